-- Each ticket classified into one of a fixed set of categories.
{{ config(materialized='table') }}

select
    ticket_id,
    steadytext_generate_choice(
        'Classify this support ticket: ' || body,
        array['billing', 'bug', 'feature request', 'account']
    ) as category
from {{ source('support', 'tickets') }}
