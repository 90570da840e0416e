-- The sample data the models read: a handful of support tickets.
CREATE SCHEMA IF NOT EXISTS support;
CREATE TABLE IF NOT EXISTS support.tickets (
    ticket_id integer PRIMARY KEY,
    body text NOT NULL
);
INSERT INTO support.tickets (ticket_id, body) VALUES
    (1, 'I was charged twice for my subscription this month. Please refund one payment.'),
    (2, 'The export button crashes the app when the report has more than 1000 rows.'),
    (3, 'Could you add dark mode to the dashboard? My eyes hurt at night.'),
    (4, 'I cannot log in after resetting my password; the link says it expired.'),
    (5, 'My invoice shows the wrong company name and VAT number.'),
    (6, 'Uploading a CSV with accented names corrupts the characters.'),
    (7, 'Please support exporting charts as SVG as well as PNG.'),
    (8, 'How do I add a second administrator to our team account?')
ON CONFLICT (ticket_id) DO NOTHING;
