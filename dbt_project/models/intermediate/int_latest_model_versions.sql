-- The latest version of every model: what the marketplace lists and the daily run scores.
{{ config(materialized='view') }}
select *
from {{ ref('stg_model_versions') }}
qualify row_number() over (partition by model_id order by version desc) = 1
