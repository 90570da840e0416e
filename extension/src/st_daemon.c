/*
 * st_daemon.c
 *		steadytext_daemon_start(): run the configured daemon command.
 *
 * The command is a path a superuser sets in steadytext.daemon_command; it
 * runs with fixed arguments ("daemon start --endpoint <endpoint>") through
 * execve, so no shell ever sees text a user chose. The child gets its own
 * session and none of the backend's file descriptors, and what the daemon
 * needs from its environment even when the postmaster's lacks it: HOME (the
 * server user's home directory) and STEADYTEXT_PG_URL (this database, over
 * the server's first Unix socket, as the server's OS user). The command is
 * always waited for: on timeout, cancel or error it is killed and reaped, so
 * no zombie is left; the wait exits at once if the postmaster dies.
 */
#include "postgres.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "commands/dbcommands.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/libpq.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "st_guc.h"

/* How long `st daemon start` may take to report the daemon ready */
#define ST_DAEMON_START_TIMEOUT_MS 120000

PG_FUNCTION_INFO_V1(steadytext_spawn_daemon);

extern char **environ;

/* Percent-encode a URL component */
static void
append_url_encoded(StringInfo buf, const char *s)
{
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			c == '-' || c == '_' || c == '.' || c == '~')
			appendStringInfoChar(buf, c);
		else
			appendStringInfo(buf, "%%%02X", c);
	}
}

/* The URL of this database for the daemon: the first Unix socket directory, the server's port and OS user */
static char *
database_url(const char *os_user)
{
	StringInfoData buf;
	char	   *dbname = get_database_name(MyDatabaseId);
	char	   *socket_dir = NULL;

	if (Unix_socket_directories != NULL && Unix_socket_directories[0] != '\0')
	{
		char	   *comma;

		socket_dir = pstrdup(Unix_socket_directories);
		comma = strchr(socket_dir, ',');
		if (comma)
			*comma = '\0';
		while (*socket_dir == ' ')
			socket_dir++;
	}
	initStringInfo(&buf);
	appendStringInfoString(&buf, "postgresql:///");
	append_url_encoded(&buf, dbname ? dbname : "postgres");
	appendStringInfo(&buf, "?port=%d", PostPortNumber);
	if (socket_dir != NULL && socket_dir[0] != '\0')
	{
		appendStringInfoString(&buf, "&host=");
		append_url_encoded(&buf, socket_dir);
	}
	else
		appendStringInfoString(&buf, "&host=localhost");
	if (os_user != NULL)
	{
		appendStringInfoString(&buf, "&user=");
		append_url_encoded(&buf, os_user);
	}
	return buf.data;
}

/* The backend's environment, plus HOME and STEADYTEXT_PG_URL where it lacks them (built before fork) */
static char **
daemon_environment(void)
{
	struct passwd *pw = getpwuid(geteuid());
	int			count = 0;
	int			i;
	char	  **envp;

	while (environ[count] != NULL)
		count++;
	envp = palloc0(sizeof(char *) * (count + 3));
	for (i = 0; i < count; i++)
		envp[i] = environ[i];
	if (getenv("HOME") == NULL && pw != NULL && pw->pw_dir != NULL)
		envp[count++] = psprintf("HOME=%s", pw->pw_dir);
	if (getenv("STEADYTEXT_PG_URL") == NULL)
		envp[count++] = psprintf("STEADYTEXT_PG_URL=%s", database_url(pw != NULL ? pw->pw_name : NULL));
	envp[count] = NULL;
	return envp;
}

/* Kill the command if it is still running and reap it */
static void
reap_child(pid_t child)
{
	int			status;

	if (waitpid(child, &status, WNOHANG) == 0)
	{
		kill(child, SIGKILL);
		while (waitpid(child, &status, 0) < 0 && errno == EINTR)
			;
	}
}

/* In the child: detach from the backend and exec the command (async-signal-safe calls only) */
static void
exec_daemon_command(const char *command, char *const argv[], char *const envp[])
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
	execve(command, argv, envp);
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
	char	  **envp;
	volatile pid_t child;
	TimestampTz deadline;
	bool		ok = false;

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
	envp = daemon_environment();

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
		exec_daemon_command(command, argv, envp);

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ST_DAEMON_START_TIMEOUT_MS);
	PG_TRY();
	{
		for (;;)
		{
			int			status;
			pid_t		done = waitpid(child, &status, WNOHANG);

			if (done == child)
			{
				child = 0;
				ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
				if (!ok)
					ereport(WARNING,
							(errmsg("steadytext daemon command exited with status %d",
									WIFEXITED(status) ? WEXITSTATUS(status) : -1)));
				break;
			}
			if (done < 0 && errno != EINTR)
				break;
			if (GetCurrentTimestamp() > deadline)
			{
				ereport(WARNING, (errmsg("steadytext daemon command did not finish within %d s", ST_DAEMON_START_TIMEOUT_MS / 1000)));
				break;
			}
			/* Exits the backend at once if the postmaster has died */
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 50, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		if (child > 0)
			reap_child(child);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (child > 0)
		reap_child(child);
	PG_RETURN_BOOL(ok);
}
