# Fault injection with the real lrqd and lrq-worker on stories260K (issue 5):
# worker SIGKILLs, lrqd SIGKILL/restart, ENOSPC on a test-made tmpfs, low disk.
# Each script is bounded (< 90 s on 2 cores); test_enospc.sh skips if it cannot mount.
TESTS += tests/integration/test_faults_real.sh tests/integration/test_enospc.sh
EXTRA_DIST += tests/integration/test_faults_real.sh tests/integration/test_enospc.sh \
	tests/integration/lib_real.sh bench/wrk.sh
