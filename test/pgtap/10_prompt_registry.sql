-- The prompt registry: versioned Jinja2 templates with the original's
-- signatures, result shapes and SQLSTATEs; rendering of variables, filters,
-- loops, conditionals and defaults; strict errors; no model needed.
BEGIN;
SELECT plan(44);

-- Signatures, as the original's (argument names and defaults).
SELECT is(pg_get_function_arguments('steadytext_prompt_create(text,text,text,jsonb)'::regprocedure),
  'slug text, template text, description text DEFAULT NULL::text, metadata jsonb DEFAULT ''{}''::jsonb', 'steadytext_prompt_create arguments');
SELECT is(pg_get_function_arguments('steadytext_prompt_update(text,text,jsonb)'::regprocedure),
  'slug text, template text, metadata jsonb DEFAULT ''{}''::jsonb', 'steadytext_prompt_update arguments');
SELECT is(pg_get_function_arguments('steadytext_prompt_get(text,integer)'::regprocedure),
  'slug text, version integer DEFAULT NULL::integer', 'steadytext_prompt_get arguments');
SELECT is(pg_get_function_result('steadytext_prompt_get(text,integer)'::regprocedure),
  'TABLE(prompt_id uuid, version_num integer, template text, required_variables text[], metadata jsonb, created_at timestamp with time zone, created_by text)',
  'steadytext_prompt_get result');
SELECT is(pg_get_function_arguments('steadytext_prompt_render(text,jsonb,integer,boolean)'::regprocedure),
  'slug text, variables jsonb, version integer DEFAULT NULL::integer, strict boolean DEFAULT true', 'steadytext_prompt_render arguments');
SELECT is(pg_get_function_result('steadytext_prompt_list()'::regprocedure),
  'TABLE(prompt_id uuid, slug text, description text, latest_version_num integer, total_versions integer, created_at timestamp with time zone, updated_at timestamp with time zone)',
  'steadytext_prompt_list result');
SELECT is(pg_get_function_result('steadytext_prompt_versions(text)'::regprocedure),
  'TABLE(version integer, template text, required_variables text[], metadata jsonb, created_at timestamp with time zone, created_by text, is_active boolean)',
  'steadytext_prompt_versions result');
SELECT is(pg_get_function_result('steadytext_prompt_delete(text)'::regprocedure), 'boolean', 'steadytext_prompt_delete returns boolean');
SELECT has_table('steadytext_prompts');
SELECT has_table('steadytext_prompt_versions');

-- Create, with the variables the template needs.
SELECT isnt(steadytext_prompt_create('welcome-email', 'Hello {{ name }}, welcome to {{ product }}!', 'Welcome', '{"team": "growth"}'),
            NULL, 'a prompt is created and its id returned');
SELECT is((SELECT required_variables FROM steadytext_prompt_get('welcome-email')), ARRAY['name', 'product'],
          'its required variables are found at create time, sorted');
SELECT is((SELECT version_num FROM steadytext_prompt_get('welcome-email')), 1, 'it starts at version 1');
SELECT is(steadytext_prompt_render('welcome-email', '{"name": "Ada", "product": "SteadyText"}'),
          'Hello Ada, welcome to SteadyText!', 'variables render');

-- Loops, filters, conditionals, defaults.
SELECT lives_ok($$SELECT steadytext_prompt_create('shopping-list',
  '{% for item in items %}{{ loop.index }}. {{ item.name | title }}{% if item.qty > 1 %} x{{ item.qty }}{% endif %}{% if not loop.last %}; {% endif %}{% endfor %} for {{ who | default("you") | upper }}')$$,
  'a template with a loop, filters, a conditional and a default is accepted');
SELECT is(steadytext_prompt_render('shopping-list', '{"items": [{"name": "green tea", "qty": 2}, {"name": "rice", "qty": 1}]}'),
          '1. Green Tea x2; 2. Rice for YOU', 'loops, filters, conditionals and defaults render as Jinja2 does');
SELECT is(steadytext_prompt_render('shopping-list', '{"items": [], "who": "Bo"}'), ' for BO', 'an empty loop renders nothing');

-- Strict and lenient rendering.
SELECT throws_ok($$SELECT steadytext_prompt_render('welcome-email', '{"name": "Ada"}')$$,
  '22023', 'Missing required variables: product', 'strict rendering raises on a missing variable (22023)');
SELECT throws_ok($$SELECT steadytext_prompt_render('welcome-email', NULL)$$,
  '22023', 'Missing required variables: name, product', 'and names every missing variable');
SELECT is(steadytext_prompt_render('welcome-email', '{"name": "Ada"}', strict := false), 'Hello Ada, welcome to !',
          'lenient rendering leaves a missing variable empty');
SELECT is(steadytext_prompt_render('shopping-list', '{"items": []}', strict := true), ' for YOU',
          'a variable with a default is not missing in strict mode');
SELECT throws_ok($$SELECT steadytext_prompt_render('welcome-email', '["Ada"]')$$,
  '22023', 'variables must be a JSON object, not array', 'variables must be a JSON object');

-- Versions.
SELECT isnt(steadytext_prompt_update('welcome-email', 'Hi {{ name }}!', '{"tone": "short"}'), NULL, 'an update adds a version');
SELECT is(steadytext_prompt_render('welcome-email', '{"name": "Ada"}'), 'Hi Ada!', 'the latest version renders by default');
SELECT is(steadytext_prompt_render('welcome-email', '{"name": "Ada", "product": "X"}', 1), 'Hello Ada, welcome to X!', 'an older version renders by number');
SELECT is(ARRAY(SELECT version FROM steadytext_prompt_versions('welcome-email')), ARRAY[2, 1], 'versions are listed newest first');
SELECT is(ARRAY(SELECT is_active FROM steadytext_prompt_versions('welcome-email')), ARRAY[true, false], 'only the newest is active');
SELECT is((SELECT metadata FROM steadytext_prompt_get('welcome-email', 2)), '{"tone": "short"}'::jsonb, 'each version keeps its metadata');
SELECT is((SELECT (latest_version_num, total_versions)::text FROM steadytext_prompt_list() WHERE slug = 'welcome-email'), '(2,2)',
          'the list shows the latest version and the count');

-- Errors with the original's SQLSTATEs.
SELECT throws_ok($$SELECT steadytext_prompt_create('welcome-email', 'x')$$, '23505', 'Prompt with slug "welcome-email" already exists', 'a duplicate slug is 23505');
SELECT throws_ok($$SELECT steadytext_prompt_create('Bad Slug', 'x')$$, '22P02',
  'Invalid slug format. Use lowercase letters, numbers, and hyphens only (3-100 chars)', 'a bad slug is 22P02');
SELECT throws_ok($$SELECT steadytext_prompt_create('ab', 'x')$$, '22P02', NULL, 'a slug shorter than 3 characters is 22P02');
SELECT throws_ok($$SELECT steadytext_prompt_create(NULL, 'x')$$, '22P02', NULL, 'a NULL slug is 22P02');
SELECT throws_ok($$SELECT steadytext_prompt_create('broken-one', 'Hello {% for x in %}')$$, '42601', NULL, 'a template that does not parse is 42601');
SELECT throws_ok($$SELECT steadytext_prompt_create('empty-one', '')$$, '42601', 'Invalid Jinja2 template: the template cannot be empty', 'so is an empty one');
SELECT throws_ok($$SELECT steadytext_prompt_create('long-description', 'x', repeat('d', 501))$$, '22001',
  'Description cannot be longer than 500 characters', 'a description over 500 characters is 22001');
SELECT throws_ok($$SELECT steadytext_prompt_update('no-such-prompt', 'x')$$, 'P0002', 'Prompt with slug "no-such-prompt" not found', 'updating a missing prompt is P0002');
SELECT throws_ok($$SELECT * FROM steadytext_prompt_get('welcome-email', 9)$$, 'P0002', 'Version 9 not found for prompt "welcome-email"', 'a missing version is P0002');
SELECT throws_ok($$SELECT steadytext_prompt_render('no-such-prompt', '{}')$$, 'P0002', NULL, 'rendering a missing prompt is P0002');

-- Delete.
SELECT ok(steadytext_prompt_delete('welcome-email'), 'delete returns true for a prompt');
SELECT ok(NOT steadytext_prompt_delete('welcome-email') AND NOT EXISTS (SELECT 1 FROM steadytext_prompt_versions v
          JOIN steadytext_prompts p ON p.id = v.prompt_id WHERE p.slug = 'welcome-email'), 'and false once it and its versions are gone');

-- Without the daemon: rendering is NULL, like every other function; creating cannot check the template, so it refuses.
SELECT lives_ok($$SELECT steadytext_prompt_create('offline-check', 'Hi {{ name }}')$$, 'a prompt to render while the daemon is away');
SET LOCAL steadytext.connect_timeout_ms = 200;
SET LOCAL steadytext.daemon_port = 9;
SELECT is(steadytext_prompt_render('offline-check', '{"name": "Ada"}'), NULL, 'rendering without the daemon gives NULL');
SELECT throws_ok($$SELECT steadytext_prompt_create('offline-new', 'Hi {{ name }}')$$, '58000', NULL,
  'creating a prompt without the daemon is an error (58000), not an unchecked template');
RESET steadytext.daemon_port;
RESET steadytext.connect_timeout_ms;

SELECT * FROM finish();
ROLLBACK;
