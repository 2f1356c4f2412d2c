{% macro lake_root() -%}
    {#- The lake's root: a local folder or s3://bucket/prefix (the Dagster asset passes `lake_root`). -#}
    {{ return(var('lake_root', env_var('ODDSFORGE_LAKE', '../data/lake')).rstrip('/')) }}
{%- endmacro %}


{% macro lake_select(table, path, columns) -%}
    {#- A typed select over a lake table: every Parquet object matching `path` (a glob relative to the
        lake root), columns cast to `columns` ({name: DuckDB type}). While no object exists yet (a fresh
        lake) it selects no rows with the same columns, so the marts still build. Calling source()
        records the dbt source, which Dagster maps to the upstream asset. -#}
    {%- do source('lake', table) -%}
    {%- set location = lake_root() ~ '/' ~ path -%}
    {%- set found = true -%}
    {%- if execute -%}
        {%- set found = run_query("select count(*) from glob('" ~ location ~ "')").columns[0].values()[0] > 0 -%}
    {%- endif %}
    select
    {%- for name, type in columns.items() %}
        {% if found %}cast({{ adapter.quote(name) }} as {{ type }}){% else %}cast(null as {{ type }}){% endif %} as {{ adapter.quote(name) }}{{ "," if not loop.last }}
    {%- endfor %}
    {% if found -%}
    from (
        {#- A month object replaces the day objects of its month (stores.layout.effective_keys): the
            rule is applied to the files of this one scan, so a compaction in progress never counts
            a row twice. The pattern is stores.layout.PERIOD_PATTERN (the Dagster asset passes it). -#}
        select * exclude (_file, _period) from (
            select *, regexp_extract(_file, '{{ var("period_pattern", "^(.*)/(\\d{4}-\\d\\d)(-\\d\\d)?(/.*|\\.parquet)$") }}',
                                     ['head', 'month', 'day', 'tail']) as _period
            from read_parquet('{{ location }}', union_by_name = true, filename = '_file')
        )
        qualify _period.day = '' or not bool_or(_period.day = '')
            over (partition by _period.head, _period.month, _period.tail)
    )
    {%- else -%}
    where false
    {%- endif %}
{%- endmacro %}
