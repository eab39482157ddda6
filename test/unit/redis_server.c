/* redis_server.c - a private redis-server for the unit tests (redis_server.h). */
#include "redis_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *redis_bin(void) {
  const char *b = getenv("REDIS_SERVER_BIN");
  return b && b[0] ? b : "redis-server";
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool hbt_redis_available(void) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "command -v '%s' >/dev/null 2>&1", redis_bin());
  return system(cmd) == 0;
}

int hbt_free_port(void) {
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) return -1;
  int port = -1;
  if (bind(s, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(s, (struct sockaddr *)&a, &alen) == 0)
    port = ntohs(a.sin_port);
  close(s);
  return port;
}

/* It answers: PONG, or, with a password, the NOAUTH error (it is up). */
static bool answers(int port) {
  struct timeval tv = {1, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
  bool ok = false;
  if (c && !c->err) {
    redisSetTimeout(c, tv);
    redisReply *p = redisCommand(c, "PING");
    ok = p && (p->type == REDIS_REPLY_STATUS || p->type == REDIS_REPLY_ERROR);
    if (p) freeReplyObject(p);
  }
  if (c) redisFree(c);
  return ok;
}

int hbt_redis_start(hbt_redis *r, int port, const char *password) {
  r->pid = 0;
  r->port = port ? port : hbt_free_port();
  if (r->port < 0) return -1;
  if (!r->dir[0]) {
    snprintf(r->dir, sizeof r->dir, "/tmp/hb_test_redis.XXXXXX");
    if (!mkdtemp(r->dir)) {
      r->dir[0] = '\0';
      return -1;
    }
  }
  char ps[16];
  snprintf(ps, sizeof ps, "%d", r->port);
  char *argv[16] = {(char *)redis_bin(), "--port", ps, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--protected-mode", "no", "--dir", r->dir, NULL};
  if (password) {
    argv[13] = "--requirepass";
    argv[14] = (char *)password;
    argv[15] = NULL;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  int e = posix_spawnp(&r->pid, redis_bin(), &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (e != 0) {
    fprintf(stderr, "posix_spawn %s: %s\n", redis_bin(), strerror(e));
    r->pid = 0;
    return -1;
  }
  uint64_t end = now_ms() + HBT_REDIS_START_MS;
  while (!answers(r->port)) {
    if (waitpid(r->pid, NULL, WNOHANG) == r->pid) {
      fprintf(stderr, "redis-server on port %d exited at its start\n", r->port);
      r->pid = 0;
      return -1;
    }
    if (now_ms() > end) {
      fprintf(stderr, "redis-server on port %d did not answer within %d ms\n", r->port, HBT_REDIS_START_MS);
      hbt_redis_kill(r);
      return -1;
    }
    usleep(10000);
  }
  return 0;
}

void hbt_redis_kill(hbt_redis *r) {
  if (!r->pid) return;
  kill(r->pid, SIGCONT);
  kill(r->pid, SIGKILL);
  waitpid(r->pid, NULL, 0);
  r->pid = 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

void hbt_redis_stop(hbt_redis *r) {
  if (r->pid) {
    kill(r->pid, SIGCONT);
    kill(r->pid, SIGTERM);
    uint64_t end = now_ms() + HBT_REDIS_START_MS;
    while (waitpid(r->pid, NULL, WNOHANG) == 0) {
      if (now_ms() > end) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        break;
      }
      usleep(10000);
    }
    r->pid = 0;
  }
  if (r->dir[0]) nftw(r->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
  r->dir[0] = '\0';
}
