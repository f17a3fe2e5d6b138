from django import forms

from webhooks.models import SUBSCRIBABLE_EVENTS, EventType, WebhookEndpoint


class EndpointForm(forms.ModelForm):
    """Name, URL and events of an endpoint. The URL rule is the model's (`clean`)."""

    url = forms.URLField(
        label="URL",
        max_length=500,
        assume_scheme="https",
        help_text="Milepost POSTs a signed JSON body here. http:// or https:// only.",
        widget=forms.URLInput(attrs={"placeholder": "https://ci.example.com/hooks/milepost"}),
    )
    event_types = forms.MultipleChoiceField(
        label="Events",
        choices=[(event.value, event.label) for event in SUBSCRIBABLE_EVENTS],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one event."},
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "event_types"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk and not self.is_bound:
            self.initial.setdefault("event_types", list(SUBSCRIBABLE_EVENTS))

    def clean_name(self):
        return self.cleaned_data["name"].strip()

    def clean_event_types(self):
        chosen = set(self.cleaned_data["event_types"])
        return [event.value for event in EventType if event in chosen]  # in a stable order
