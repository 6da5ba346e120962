/*
 * loopback_bind.so: preloaded (LD_PRELOAD) into the emulator's private pcscd only.
 *
 * The vpcd driver (vsmartcard-vpcd 3.3) listens for cards on a TCP port bound to the
 * wildcard address, i.e. on every interface: any host that can reach this machine could
 * attach a card, or a bogus card, to our virtual readers. Its reverse mode (DEVICENAME
 * host:port, the driver connects to the card) would avoid the listening socket, but in
 * 3.3 a reverse-mode reader aborts pcscd the first time it has to reconnect (a card
 * removed or swapped), so it cannot be used.
 *
 * This library wraps bind(2): an IPv4 or IPv6 socket bound to the wildcard address is
 * bound to loopback (127.0.0.1 or ::1) instead, with the same port. Every other bind is
 * passed through unchanged. The launcher checks after start-up that every TCP socket
 * pcscd listens on is bound to loopback, and refuses to run otherwise.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    static bind_fn real_bind;

    if (real_bind == NULL) {
        real_bind = (bind_fn) dlsym(RTLD_NEXT, "bind");
        if (real_bind == NULL) {
            errno = ENOSYS;
            return -1;
        }
    }
    if (addr != NULL && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in in4;
        memcpy(&in4, addr, sizeof in4);
        if (in4.sin_addr.s_addr == htonl(INADDR_ANY)) {
            in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            return real_bind(fd, (const struct sockaddr *) &in4, sizeof in4);
        }
    } else if (addr != NULL && addr->sa_family == AF_INET6
               && len >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 in6;
        memcpy(&in6, addr, sizeof in6);
        if (IN6_IS_ADDR_UNSPECIFIED(&in6.sin6_addr)) {
            in6.sin6_addr = in6addr_loopback;
            return real_bind(fd, (const struct sockaddr *) &in6, sizeof in6);
        }
    }
    return real_bind(fd, addr, len);
}
