"""Chat commands over Jabber for the engineer on call: bot.py is the bot any
daemon runs over its own ChatActions (checkd/actions.py); central/bot.py adds
central's commands to it.
"""
