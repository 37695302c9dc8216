/* The least a TCP relay can cost on this machine: the reference row of bench/egress_proxy.py.
 *
 * Usage: splice_relay LISTEN_IP LISTEN_PORT UPSTREAM_IP UPSTREAM_PORT
 *
 * Each accepted connection gets a thread, which dials the upstream and moves both directions with
 * splice(2) through a 1 MiB pipe (one more thread for the second direction), blocking, with no
 * request to parse, no credentials, no policy, no logs and no metrics: what is left is the kernel's
 * work for a second TCP connection and a few system calls per megabyte. It is a measuring
 * instrument, not a proxy: it relays anything to one fixed address. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK (1 << 20)

struct direction {
    int from, to;
};

static struct sockaddr_in upstream;

static struct sockaddr_in address_of(const char *ip, const char *port) {
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
    if (inet_pton(AF_INET, ip, &address.sin_addr) != 1) {
        fprintf(stderr, "not an IPv4 address: %s\n", ip);
        exit(2);
    }
    return address;
}

/* Move one direction until end of file or an error, then half-close the receiving side. */
static void *pump(void *argument) {
    struct direction *direction = argument;
    int pipe_ends[2];
    if (pipe(pipe_ends) == 0) {
        fcntl(pipe_ends[1], F_SETPIPE_SZ, CHUNK);
        ssize_t count;
        while ((count = splice(direction->from, NULL, pipe_ends[1], NULL, CHUNK, SPLICE_F_MOVE)) > 0) {
            while (count > 0) {
                ssize_t written = splice(pipe_ends[0], NULL, direction->to, NULL, (size_t)count, SPLICE_F_MOVE);
                if (written <= 0) goto done;
                count -= written;
            }
        }
    done:
        close(pipe_ends[0]);
        close(pipe_ends[1]);
    }
    shutdown(direction->to, SHUT_WR);
    return NULL;
}

static void *serve(void *argument) {
    int client = (int)(long)argument, server = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(server, (struct sockaddr *)&upstream, sizeof upstream) == 0) {
        struct direction up = {client, server}, down = {server, client};
        pthread_t thread;
        if (pthread_create(&thread, NULL, pump, &up) == 0) {
            pump(&down);
            pthread_join(thread, NULL);
        }
    }
    close(server);
    close(client);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s LISTEN_IP LISTEN_PORT UPSTREAM_IP UPSTREAM_PORT\n", argv[0]);
        return 2;
    }
    struct sockaddr_in listen_address = address_of(argv[1], argv[2]);
    upstream = address_of(argv[3], argv[4]);
    int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listener, (struct sockaddr *)&listen_address, sizeof listen_address) != 0 || listen(listener, 1024) != 0) {
        perror("listen");
        return 1;
    }
    for (;;) {
        int client = accept(listener, NULL, NULL);
        pthread_t thread;
        if (client >= 0 && pthread_create(&thread, NULL, serve, (void *)(long)client) == 0) {
            pthread_detach(thread);
        } else if (client >= 0) {
            close(client);
        }
    }
}
