-- One embedding per ticket. Incremental, keyed on the ticket: a run embeds
-- only tickets it has not embedded before, or whose body changed.
{{ config(materialized='incremental', unique_key='ticket_id') }}

select
    t.ticket_id,
    t.body,
    md5(t.body) as body_md5,
    steadytext_embed(t.body) as embedding
from {{ source('support', 'tickets') }} as t
{% if is_incremental() %}
where not exists (
    select 1 from {{ this }} as done
    where done.ticket_id = t.ticket_id and done.body_md5 = md5(t.body)
)
{% endif %}
