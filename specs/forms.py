from django import forms

from milestones.models import Plan
from specs.document import MILESTONE_SHAPE, PLAN_SHAPE
from specs.parser import MAX_BYTES, UnreadableDocument, decode

SHAPES = [
    ("", "Work it out from the document"),
    (MILESTONE_SHAPE, "One milestone spec"),
    (PLAN_SHAPE, "A plan with its milestones"),
]


class SpecUploadForm(forms.Form):
    """A markdown file (or pasted markdown), and where it goes."""

    file = forms.FileField(
        label="Markdown file",
        required=False,
        help_text=f"A .md file of at most {MAX_BYTES // 1024 // 1024} MB, written as in the spec "
        "guide.",
        widget=forms.ClearableFileInput(attrs={"accept": ".md,.markdown,.txt,text/markdown"}),
    )
    text = forms.CharField(
        label="Or paste the markdown",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
    )
    plan = forms.ModelChoiceField(
        queryset=Plan.objects.none(),
        required=False,
        label="Into plan",
        empty_label="The plan the document names, or a new plan for a plan document",
        help_text="A milestone spec goes into this plan; a plan document's milestones too, "
        "instead of into a new plan.",
    )
    shape = forms.ChoiceField(choices=SHAPES, required=False, label="The document is")

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = Plan.objects.filter(team=team).open().order_by("key")
        self.fields["plan"].label_from_instance = lambda plan: f"{plan.key} {plan.title}"

    def clean(self):
        cleaned = super().clean()
        upload, text = cleaned.get("file"), cleaned.get("text") or ""
        if upload and text.strip():
            raise forms.ValidationError("Upload a file or paste markdown, not both.")
        if not upload and not text.strip():
            raise forms.ValidationError("Choose a markdown file, or paste the markdown.")
        if upload:
            if upload.size > MAX_BYTES:
                self.add_error(
                    "file",
                    f"The file is {upload.size / 1024 / 1024:.1f} MB; spec documents may be at "
                    f"most {MAX_BYTES // 1024 // 1024} MB. Split the plan into several "
                    "documents.",
                )
                return cleaned
            try:
                cleaned["document_text"], cleaned["decode_problems"] = decode(upload.read())
            except UnreadableDocument as unreadable:
                self.add_error("file", unreadable.problem.message)
            cleaned["filename"] = upload.name[:200]
        else:
            if len(text.encode()) > MAX_BYTES:
                self.add_error(
                    "text", "That is more than 2 MB of markdown; upload it as a file in parts."
                )
            cleaned["document_text"], cleaned["decode_problems"] = text, []
            cleaned["filename"] = "pasted markdown"
        return cleaned
