from django import forms

from .models import Assignee, FindingState, Kind
from .selectors import FindingFilter

DUE_CHOICES = (("", "全部"), ("24h", "24 小时内到期"), ("overdue", "已逾期"))


def _with_all(choices):
    return (("", "全部"), *choices)


class FindingFilterForm(forms.Form):
    state = forms.ChoiceField(label="状态", choices=_with_all(FindingState.choices), required=False)
    kind = forms.ChoiceField(label="类别", choices=_with_all(Kind.choices), required=False)
    assignee = forms.ChoiceField(label="负责角色", choices=_with_all(Assignee.choices), required=False)
    due = forms.ChoiceField(label="截止", choices=DUE_CHOICES, required=False)

    def to_filter(self) -> FindingFilter:
        return FindingFilter(
            **{k: self.cleaned_data.get(k) or "" for k in ("state", "kind", "assignee", "due")}
        )
