-- When a project's policy last changed through its remediations (an action applied, rolled back
-- or expired): the ingest's violation flags judge only calls made after that, so this is read
-- for every project that ingests while it has remediations.
create index remediations_project_idx on remediations (project_id);
