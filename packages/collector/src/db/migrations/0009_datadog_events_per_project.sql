-- Datadog alert ids are claimed per project, not per install. An alert is accepted only with an
-- API key of its project (since the webhook stopped trusting the install-wide secret alone), so
-- one user's alerts can no longer claim ids in another's project: with install-wide ids, a user
-- who guessed another's (Datadog's event ids are sequential) could still pre-claim them and
-- have the real alerts dropped as replays.
alter table datadog_events drop constraint datadog_events_pkey;
alter table datadog_events add primary key (project_id, id);
