/*
 * st_daemon.c
 *		steadytext_daemon_start(): run the configured daemon command.
 *
 * The command is a path a superuser sets in steadytext.daemon_command; it
 * runs with fixed arguments ("daemon start --endpoint <endpoint>") through
 * execv, so no shell ever sees text a user chose. The child gets its own
 * session and none of the backend's file descriptors.
 */
#include "postgres.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/timestamp.h"

#include "st_guc.h"

/* How long `st daemon start` may take to report the daemon ready */
#define ST_DAEMON_START_TIMEOUT_MS 120000

PG_FUNCTION_INFO_V1(steadytext_spawn_daemon);

/* In the child: detach from the backend and exec the command (async-signal-safe calls only) */
static void
exec_daemon_command(const char *command, char *const argv[])
{
	int			devnull;
	int			fd;
	sigset_t	all;

	setsid();
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	devnull = open("/dev/null", O_RDWR);
	if (devnull >= 0)
	{
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
	}
	for (fd = 3; fd < 1024; fd++)
		close(fd);
	execv(command, argv);
	_exit(127);
}

/*
 * _steadytext_spawn_daemon() returns boolean
 *		Run steadytext.daemon_command and report whether it succeeded.
 */
Datum
steadytext_spawn_daemon(PG_FUNCTION_ARGS)
{
	char	   *endpoint = st_effective_endpoint();
	char	   *command = st_daemon_command;
	char	   *argv[6];
	pid_t		child;
	TimestampTz deadline;

	if (command == NULL || command[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("steadytext.daemon_command is not set"),
				 errhint("A superuser sets it to the absolute path of the st command, for example in postgresql.conf.")));
	if (command[0] != '/' || access(command, X_OK) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("steadytext.daemon_command \"%s\" is not an executable absolute path", command)));

	argv[0] = command;
	argv[1] = "daemon";
	argv[2] = "start";
	argv[3] = "--endpoint";
	argv[4] = endpoint;
	argv[5] = NULL;

	fflush(NULL);
	child = fork();
	if (child < 0)
	{
		int			save_errno = errno;

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not start the steadytext daemon: %s", strerror(save_errno))));
	}
	if (child == 0)
		exec_daemon_command(command, argv);

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ST_DAEMON_START_TIMEOUT_MS);
	for (;;)
	{
		int			status;
		pid_t		done = waitpid(child, &status, WNOHANG);

		if (done == child)
		{
			if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
				PG_RETURN_BOOL(true);
			ereport(WARNING,
					(errmsg("steadytext daemon command exited with status %d",
							WIFEXITED(status) ? WEXITSTATUS(status) : -1)));
			PG_RETURN_BOOL(false);
		}
		if (done < 0 && errno != EINTR)
			PG_RETURN_BOOL(false);
		if (GetCurrentTimestamp() > deadline)
		{
			kill(child, SIGTERM);
			ereport(WARNING, (errmsg("steadytext daemon command did not finish within %d s", ST_DAEMON_START_TIMEOUT_MS / 1000)));
			PG_RETURN_BOOL(false);
		}
		CHECK_FOR_INTERRUPTS();
		pg_usleep(50000);
	}
}
