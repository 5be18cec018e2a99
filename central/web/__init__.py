"""The NOC status page and the host/service pages: server-rendered HTML (Jinja2)
with a little plain JavaScript that refreshes the live part of each page.

views (what a page shows, as data) -> pages (GET routes, templates) ->
forms (login, CSRF, actions through central.operations); session.py signs
the login cookie. Templates live in central/templates/web/, assets in
central/static/. docs/web.md is the reference.
"""
