-- 0003_slurm.sql — the Slurm executor (issue 14): the Slurm job id of a running job's
-- current attempt, so that a restarted lrqd re-adopts that Slurm job instead of
-- submitting a second one (docs/daemon.md, "Deploying with Slurm"). NULL while the
-- attempt has not been accepted by sbatch yet, and for the local executor.
ALTER TABLE job ADD COLUMN slurm_job_id INTEGER CHECK (slurm_job_id IS NULL OR slurm_job_id > 0);
