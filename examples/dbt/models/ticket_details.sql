-- Structured fields pulled out of each ticket as JSON that follows a schema
-- (constrained generation: the model can only write what the schema allows).
{{ config(materialized='table') }}

select
    ticket_id,
    steadytext_generate_json(
        'Which product area does this support ticket concern, and how urgent is it? ' || body,
        '{"type": "object",
          "properties": {
            "area": {"type": "string", "enum": ["payments", "reports", "dashboard", "login", "imports", "team"]},
            "urgency": {"type": "string", "enum": ["low", "medium", "high"]},
            "needs_reply": {"type": "boolean"}},
          "required": ["area", "urgency", "needs_reply"]}'::jsonb
    ) as details
from {{ source('support', 'tickets') }}
