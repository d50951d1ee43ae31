-- The search index holds its text case-folded, so a search matches it with LIKE against the
-- folded term instead of ILIKE. On a UTF-8 database ILIKE is lower() of both sides and then a
-- plain match, so the two find the same rows; but ILIKE folds every row it reads, again for each
-- search, and a common term's candidate probe reads tens of thousands of rows: 2–3× slower
-- (logs/store.ts; docs/benchmarks.md). The indexer now stores lower(prompt ‖ response).
drop index llm_request_text_trgm;
update llm_request_text set body = lower(body);
create index llm_request_text_trgm on llm_request_text using gin (body gin_trgm_ops);
