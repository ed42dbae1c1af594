"""Admin of calling systems: allowed interfaces, token issue (shown once), per-system counts."""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from hospital_interop.municipal.specs import load_catalogue

from . import selectors, services
from .models import LOCAL_SCOPES, CallingSystem


def _interface_choices():
    return [
        *((code, f"{code} {label}") for code, label in LOCAL_SCOPES.items()),
        *(
            (s.code, f"{s.code} {s.name}")
            for s in load_catalogue().interfaces
            if s.kind in ("upload", "void", "daily")
        ),
    ]


class CallingSystemForm(forms.ModelForm):
    allowed_interfaces = forms.MultipleChoiceField(
        label="允许的接口",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=_interface_choices,
        help_text="勾选“允许全部记录类型”时忽略",
    )

    class Meta:
        model = CallingSystem
        fields = ["code", "name", "active", "allow_all", "allowed_interfaces", "contact", "note"]

    def clean_allowed_interfaces(self):
        return sorted(self.cleaned_data["allowed_interfaces"])


@admin.register(CallingSystem)
class CallingSystemAdmin(admin.ModelAdmin):
    form = CallingSystemForm
    list_display = ["code", "name", "active", "scope", "token_state", "last_used_at"]
    list_filter = ["active", "allow_all"]
    search_fields = ["code", "name", "contact"]
    readonly_fields = ["token_hint", "token_created_at", "last_used_at", "created_at"]
    actions = ["generate_token", "revoke_tokens"]
    change_list_template = "admin/integrations/callingsystem/change_list.html"

    @admin.display(description="允许范围")
    def scope(self, obj):
        if obj.allow_all:
            return "全部"
        return f"{len(obj.allowed_interfaces or [])} 个接口"

    @admin.display(description="令牌")
    def token_state(self, obj):
        return f"{obj.token_hint}…（{obj.token_created_at:%Y-%m-%d}）" if obj.has_token else "未生成"

    @admin.action(description="生成新令牌（旧令牌立即失效，新令牌只显示一次）")
    def generate_token(self, request, queryset):
        issued = [(system, services.issue_token(system)) for system in queryset]
        self.message_user(request, f"已为 {len(issued)} 个接入系统生成新令牌。", messages.SUCCESS)
        return TemplateResponse(
            request,
            "admin/integrations/token_issued.html",
            {
                **self.admin_site.each_context(request),
                "title": "新令牌（只显示这一次）",
                "issued": issued,
                "opts": self.model._meta,
            },
        )

    @admin.action(description="作废令牌")
    def revoke_tokens(self, request, queryset):
        for system in queryset:
            services.revoke_token(system)
        self.message_user(request, f"已作废 {queryset.count()} 个接入系统的令牌。", messages.WARNING)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "system_counts": selectors.counts_by_system()}
        return super().changelist_view(request, extra_context)
