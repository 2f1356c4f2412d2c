{% macro wilson_lower_bound(wins, n, z=none) -%}
    {#- Lower end of the Wilson score interval of wins / n, 0 when n is 0. The same formula as
        domain.marketplace.performance.wilson_lower_bound (tests/test_dbt.py checks that they agree):
        (wins + z²/2 - z * sqrt(wins * (n - wins) / n + z²/4)) / (n + z²) -#}
    {%- set z = var('wilson_z') if z is none else z -%}
    case when ({{ n }}) > 0 then
        (({{ wins }}) + {{ z }} * {{ z }} / 2.0
            - {{ z }} * sqrt(({{ wins }}) * (({{ n }}) - ({{ wins }})) / ({{ n }}) + {{ z }} * {{ z }} / 4.0))
        / (({{ n }}) + {{ z }} * {{ z }})
    else 0.0 end
{%- endmacro %}
