/*
 * privileges: the identity weir serves as ([server] user and group), the
 * drop to it after binding, and what `weir -t` can check about it without
 * binding anything: the user and group exist, weir can become them, the
 * log files can be opened (at start, before the drop) and reopened (after
 * it, on SIGUSR1), and the files it reads later (route roots, and keys a
 * reload reads again) are readable by that user.
 *
 * Layer 5 (config and log only). Main thread, before workers start: the
 * checks switch the process's effective ids for a moment.
 */
#ifndef WEIR_PRIVILEGES_H
#define WEIR_PRIVILEGES_H

#include "weir/config.h"

/*
 * Becomes server->user (and server->group, else the user's primary group)
 * for good: setgroups to that one group, setgid, setuid. Nothing to do when
 * user is unset (a warning is logged when running as root) or when the
 * process already is exactly that user and group (a unit with User=, or
 * setpriv): that is not an error. Returns 0, or -1 after logging why (no
 * such user or group; not root and another user).
 */
int wr_privileges_drop(const struct wr_server_cfg *server);

/*
 * The start-up checks of cfg, appended to errs as
 * "file:line: [section] key: message" (errors: weir -c would fail the same
 * way) or "file:line: warning: [section] key: message" (it starts, but a
 * later step fails):
 *  - error: user or group does not exist; weir is not root and is not
 *    already that user, so it cannot become it (or, as root, the kernel
 *    refuses the switch: no CAP_SETUID/CAP_SETGID);
 *  - error: error_log or access_log cannot be opened for appending by the
 *    process as it is now (weir opens them before the drop);
 *  - warning: a log file that root opens but the user could not reopen
 *    after log rotation (SIGUSR1);
 *  - warning: a route root that the serving user cannot read and search
 *    (its requests would get 403);
 *  - warning: a [tls] cert or key, or an upstream tls_ca, that only the
 *    identity before the drop can read (a reload cannot read it again).
 * Access is judged by the kernel (faccessat with AT_EACCESS) under the
 * user's effective ids, so ACLs, read-only mounts and every directory on
 * the way count. Main thread, before any other thread exists.
 */
void wr_privileges_check(const struct wr_config *cfg, struct wr_config_errors *errs);

#endif
