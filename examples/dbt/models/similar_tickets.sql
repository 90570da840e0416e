-- For each ticket, the most similar other ticket (pgvector cosine distance).
{{ config(materialized='view') }}

select
    e.ticket_id,
    nearest.ticket_id as similar_ticket_id,
    nearest.distance
from {{ ref('ticket_embeddings') }} as e
cross join lateral (
    select other.ticket_id, other.embedding <=> e.embedding as distance
    from {{ ref('ticket_embeddings') }} as other
    where other.ticket_id <> e.ticket_id
    order by other.embedding <=> e.embedding
    limit 1
) as nearest
