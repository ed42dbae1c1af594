"""``{% if user|may:"uploads:dashboard" %}``: show a link only to those the access matrix lets
through (a built-in of the templates, see settings.TEMPLATES)."""

from django import template

from hospital_interop.access import may_open

register = template.Library()


@register.filter
def may(user, view_name: str) -> bool:
    return may_open(user, view_name)
