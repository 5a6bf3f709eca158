/* lrqctl.c — main(): read the environment, hand over to cli_main(). */
#include "cli.h"
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *poll = getenv("LRQ_POLL_MS");
    cli_env_t env = {
        .server = getenv("LRQ_SERVER"),
        .token = getenv("LRQ_TOKEN"),
        .out = stdout,
        .err = stderr,
        .out_tty = isatty(STDOUT_FILENO),
        .poll_ms = poll ? atol(poll) : 1000,
        .retries = 10,
    };
    if (env.poll_ms < 10 || env.poll_ms > 60000)
        env.poll_ms = 1000;
    return cli_main(argc, argv, &env);
}
