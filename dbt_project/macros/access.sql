{% macro has_access(status, past_due_since, at) -%}
    {#- Whether a subscription gives access at `at` (SPEC 6): trial or active, or past_due for
        `past_due_grace_hours` after the failed invoice, excluding the end. The same rule as
        domain.money.subscriptions.access (tests/test_dbt.py checks that they agree). -#}
    (({{ status }}) in ('trial', 'active')
        or (({{ status }}) = 'past_due'
            and ({{ at }}) < ({{ past_due_since }}) + to_hours(cast({{ var('past_due_grace_hours') }} as bigint))))
{%- endmacro %}
