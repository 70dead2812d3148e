"""The workspace: server-rendered pages for reps, leads and managers (Jinja2, plain forms).

- ``templating``: the Jinja2 environment (autoescape, the i18n extension, time filters);
- ``contributions``: pages, panels, cards, navigation and template folders from every plugin;
- ``auth``: sign-in, sessions, CSRF;
- ``workspace``: the Starlette routes serving all of it;
- ``pages``: the web plugin's own pages (My day, the customer page, search).
"""
