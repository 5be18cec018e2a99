"""Notifications: from an event to messages people receive (email, Jabber, webhooks).

notification.py is the one type every stage and channel shares; each channel
module turns a Notification into a delivery and says whether a failure is
worth retrying.
"""
