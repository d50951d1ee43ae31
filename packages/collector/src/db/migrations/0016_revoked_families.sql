-- Every request with an access token asks whether its session (refresh-token family) was ended,
-- and every refresh whether its family holds a revoked token (auth/store.ts sessionEnded,
-- claimRefreshToken). A family refreshed every 15 minutes for a week has ~700 rows; this index
-- holds only the revoked ones, so each question is one lookup.
create index refresh_tokens_revoked_family_idx on refresh_tokens (family_id) where revoked_at is not null;
