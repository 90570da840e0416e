-- One model-written summary of the tickets in each category.
{{ config(materialized='table') }}

select
    c.category,
    count(*) as tickets,
    steadytext_summarize(t.body, jsonb_build_object('category', c.category)) as summary
from {{ ref('ticket_categories') }} as c
join {{ source('support', 'tickets') }} as t using (ticket_id)
group by c.category
