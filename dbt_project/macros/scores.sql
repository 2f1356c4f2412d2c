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


{% macro edge_lower_bound(wins, n, breakeven) -%}
    {#- The performance score (SPEC 5): the Wilson lower bound of wins / n minus the mean break-even
        probability (1 / decimal price) of the same graded picks, 0 when n is 0. The same formula as
        domain.marketplace.performance.edge_lower_bound. -#}
    ({{ wilson_lower_bound(wins, n) }}
        - case when ({{ n }}) > 0 then coalesce({{ breakeven }}, 0.0) else 0.0 end)
{%- endmacro %}


{% macro mean_interval(mean, mean_sq, n, bound) -%}
    {#- One end (`bound` = -1 low, 1 high) of the normal 95% interval of a mean from its count, mean
        and mean of squares (sample variance, clipped at 0), null under two values. The same formula
        as domain.marketplace.performance.mean_interval. -#}
    {%- set z = var('wilson_z') -%}
    case when ({{ n }}) > 1 then
        ({{ mean }}) + ({{ bound }}) * {{ z }} * sqrt(
            greatest((({{ mean_sq }}) - ({{ mean }}) * ({{ mean }})) * ({{ n }}) / (({{ n }}) - 1.0), 0.0)
            / ({{ n }}))
    end
{%- endmacro %}
