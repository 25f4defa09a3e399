/* Byte-order helpers for the DHCPv4 codec.
 *
 * DHCP fields are big-endian and sit at arbitrary (unaligned) offsets of the datagram, so
 * they are read and written byte by byte; GCC and Clang fold these shifts into one load plus
 * a bswap at -O2, which is both alignment-safe and as fast as ntohl on an aligned word.
 */
#ifndef FASTDHCP_HTON_H
#define FASTDHCP_HTON_H

#include <stdint.h>

static inline uint16_t fd_load_be16(const unsigned char *p)
{
    return (uint16_t)(((uint16_t)p[0] << 8) | (uint16_t)p[1]);
}

static inline uint32_t fd_load_be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void fd_store_be16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static inline void fd_store_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

#endif /* FASTDHCP_HTON_H */
