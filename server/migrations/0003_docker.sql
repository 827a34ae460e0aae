-- Docker backend: per-function network access and warm-pool size.
ALTER TABLE functions ADD COLUMN network INTEGER NOT NULL DEFAULT 0;
ALTER TABLE functions ADD COLUMN warm_pool_size INTEGER;
