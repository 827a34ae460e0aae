-- The commit a Go source's ref resolved to, recorded on each deployment.
ALTER TABLE deployments ADD COLUMN resolved_commit TEXT;
