"""The customer's order forms. Fields are named as the API v2 `add` parameters, so a rejection
from `app.orders.validation` (which names its field) lands on the input it is about. The forms
check nothing themselves: the order services are the one place an order is validated."""

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, TextAreaField

from app.orders.validation import SUBSCRIPTION_DELAYS

NUMBER = {"inputmode": "numeric", "autocomplete": "off"}
LIST = {"rows": 4, "autocomplete": "off", "spellcheck": "false"}

# What each `add` parameter is called on the page (the order form and an order's details), in
# the order the form shows them.
PARAM_LABELS = {
    "link": _l("Link"),
    "username": _l("Username"),
    "quantity": _l("Quantity"),
    "runs": _l("Runs"),
    "interval": _l("Interval (minutes)"),
    "comments": _l("Comments"),
    "usernames": _l("Usernames"),
    "hashtags": _l("Hashtags"),
    "hashtag": _l("Hashtag"),
    "media": _l("Media link"),
    "answer_number": _l("Answer number"),
    "groups": _l("Groups"),
    "keywords": _l("Keywords"),
    "min": _l("Min"),
    "max": _l("Max"),
    "delay": _l("Delay"),
    "posts": _l("Posts"),
    "old_posts": _l("Old posts"),
    "expiry": _l("Expiry"),
}

# A hint under the inputs that need one.
PARAM_HELP = {
    "link": _l("The page, post or profile to deliver to, starting with https://"),
    "runs": _l("Drip-feed (optional): how many times to deliver the quantity."),
    "interval": _l("Drip-feed: minutes between runs."),
    "comments": _l("One per line."),
    "usernames": _l("One per line."),
    "hashtags": _l("One per line."),
    "groups": _l("One per line."),
    "keywords": _l("One per line."),
    "min": _l("Fewest to deliver per post."),
    "max": _l("Most to deliver per post; the charge is for this many per post."),
    "posts": _l("Optional: how many new posts to cover."),
    "old_posts": _l("Optional: how many existing posts to cover."),
    "expiry": _l("Optional: stop after this date."),
}


def delay_choices() -> list[tuple[str, str]]:
    return [
        (
            str(minutes),
            _l("No delay")
            if minutes == 0
            else lazy_ngettext("%(num)s minute", "%(num)s minutes", minutes),
        )
        for minutes in SUBSCRIPTION_DELAYS
    ]


class OrderForm(FlaskForm):
    """One order. `form_token` is issued with the page: posting the same form twice makes one
    order."""

    service = SelectField(_l("Service"), choices=[], validate_choice=False)
    link = StringField(
        PARAM_LABELS["link"],
        render_kw={"inputmode": "url", "autocomplete": "off", "placeholder": "https://"},
    )
    quantity = StringField(PARAM_LABELS["quantity"], render_kw=NUMBER)
    runs = StringField(PARAM_LABELS["runs"], render_kw=NUMBER)
    interval = StringField(PARAM_LABELS["interval"], render_kw=NUMBER)
    comments = TextAreaField(PARAM_LABELS["comments"], render_kw=LIST)
    usernames = TextAreaField(PARAM_LABELS["usernames"], render_kw=LIST)
    hashtags = TextAreaField(PARAM_LABELS["hashtags"], render_kw=LIST)
    hashtag = StringField(PARAM_LABELS["hashtag"], render_kw={"autocomplete": "off"})
    username = StringField(PARAM_LABELS["username"], render_kw={"autocomplete": "off"})
    media = StringField(
        PARAM_LABELS["media"], render_kw={"inputmode": "url", "autocomplete": "off"}
    )
    answer_number = StringField(PARAM_LABELS["answer_number"], render_kw=NUMBER)
    groups = TextAreaField(PARAM_LABELS["groups"], render_kw=LIST)
    keywords = TextAreaField(PARAM_LABELS["keywords"], render_kw=LIST)
    min = StringField(PARAM_LABELS["min"], render_kw=NUMBER)
    max = StringField(PARAM_LABELS["max"], render_kw=NUMBER)
    delay = SelectField(PARAM_LABELS["delay"], choices=delay_choices, validate_choice=False)
    posts = StringField(PARAM_LABELS["posts"], render_kw=NUMBER)
    old_posts = StringField(PARAM_LABELS["old_posts"], render_kw=NUMBER)
    expiry = StringField(PARAM_LABELS["expiry"], render_kw={"type": "date"})
    form_token = HiddenField()


class MassOrderForm(FlaskForm):
    orders = TextAreaField(
        _l("Orders"),
        render_kw={
            "rows": 10,
            "autocomplete": "off",
            "spellcheck": "false",
            "placeholder": "12|https://instagram.com/p/abc|1000",
        },
    )
    form_token = HiddenField()


class CancelOrderForm(FlaskForm):
    """The cancel button: nothing but the CSRF token."""
