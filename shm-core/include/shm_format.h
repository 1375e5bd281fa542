/* shm_format.h: the shm segment format, for C peers.
 *
 * GENERATED from shm-core/src/format (the Rust module that defines the
 * format, with its byte tables); do not edit. Regenerate with
 *     SHM_BLESS=1 cargo test -p shm-core --test c_header
 *
 * All words are 32-bit, in the creator's byte order (check
 * SHM_ENDIAN_MARK), at 4-byte aligned offsets; the segment base is
 * SHM_CACHE_LINE aligned. Shared memory is written concurrently by the
 * other side: access control words only with 32-bit atomic loads and
 * stores (C11 <stdatomic.h>), load the header state with acquire order
 * before reading anything else, read each length or index once and check
 * it against the geometry validated at open. See the Rust docs of
 * shm_core::format for the rules an opener checks and the protocols.
 */
#ifndef SHM_FORMAT_H
#define SHM_FORMAT_H

/* Identity and segment map (offsets from the segment base) */
#define SHM_CACHE_LINE                           64u
#define SHM_MAGIC_LO                             0x5f4d4853u
#define SHM_MAGIC_HI                             0x31474553u
#define SHM_FORMAT_MAJOR                         2u
#define SHM_FORMAT_MINOR                         2u
#define SHM_VERSION                              0x00020002u
#define SHM_ENDIAN_MARK                          0x01020304u
#define SHM_TABLE_OFFSET                         64u
#define SHM_MAX_CHANNELS                         16u
#define SHM_MAX_NAME                             31u
#define SHM_AREAS_OFFSET                         1088u

/* Header (offsets from the segment base) and its state values */
#define SHM_HEADER_SIZE                          64u
#define SHM_HEADER_MAGIC_LO_OFFSET               0u
#define SHM_HEADER_MAGIC_HI_OFFSET               4u
#define SHM_HEADER_VERSION_OFFSET                8u
#define SHM_HEADER_ENDIAN_OFFSET                 12u
#define SHM_HEADER_LAYOUT_HASH_LO_OFFSET         16u
#define SHM_HEADER_LAYOUT_HASH_HI_OFFSET         20u
#define SHM_HEADER_TOTAL_SIZE_OFFSET             24u
#define SHM_HEADER_CHANNEL_COUNT_OFFSET          28u
#define SHM_HEADER_STATE_OFFSET                  32u
#define SHM_HEADER_GENERATION_OFFSET             36u
#define SHM_HEADER_CREATOR_OFFSET                40u
#define SHM_HEADER_SESSION_OFFSET                44u
#define SHM_HEADER_CREATOR_START_OFFSET          48u
#define SHM_HEADER_CREATOR_DOMAIN_OFFSET         52u
#define SHM_HEADER_FLAGS_OFFSET                  56u
#define SHM_HEADER_FLAG_LOCKED_ATOMICS           1u
#define SHM_HEADER_RESERVED_OFFSET               60u
#define SHM_STATE_EMPTY                          0u
#define SHM_STATE_INITIALIZING                   1u
#define SHM_STATE_READY                          2u
#define SHM_STATE_POISONED                       3u

/* Channel table entry (offsets from the entry; entry i at SHM_TABLE_OFFSET + i * SHM_TABLE_ENTRY_SIZE) */
#define SHM_TABLE_ENTRY_SIZE                     64u
#define SHM_TABLE_KIND_OFFSET                    0u
#define SHM_TABLE_RESERVED0_OFFSET               4u
#define SHM_TABLE_OFFSET_OFFSET                  8u
#define SHM_TABLE_SIZE_OFFSET                    12u
#define SHM_TABLE_SLOTS_OFFSET                   16u
#define SHM_TABLE_CAPACITY_OFFSET                16u
#define SHM_TABLE_INITIAL_COUNT_OFFSET           16u
#define SHM_TABLE_SLOT_SIZE_OFFSET               20u
#define SHM_TABLE_SUBSCRIBERS_OFFSET             20u
#define SHM_TABLE_RESERVED1_OFFSET               24u
#define SHM_TABLE_NAME_OFFSET                    32u
#define SHM_TABLE_NAME_BYTES                     32u
#define SHM_KIND_MAILBOX                         1u
#define SHM_KIND_QUEUE                           2u
#define SHM_KIND_SEMAPHORE                       3u
#define SHM_KIND_BROADCAST                       4u
#define SHM_KIND_DIRECT                          5u

/* Queue area (offsets from the area) and frames (offsets from the frame) */
#define SHM_QUEUE_HEAD_OFFSET                    0u
#define SHM_QUEUE_PRODUCER_OFFSET                4u
#define SHM_QUEUE_CONSUMER_WAITING_OFFSET        8u
#define SHM_QUEUE_SENT_OFFSET                    12u
#define SHM_QUEUE_PRODUCER_FLAGS_OFFSET          16u
#define SHM_QUEUE_TAIL_OFFSET                    64u
#define SHM_QUEUE_CONSUMER_OFFSET                68u
#define SHM_QUEUE_PRODUCER_WAITING_OFFSET        72u
#define SHM_QUEUE_RECEIVED_OFFSET                76u
#define SHM_QUEUE_CONSUMER_FLAGS_OFFSET          80u
#define SHM_QUEUE_LAZY_WAKE                      1u
#define SHM_QUEUE_LAZY_RECHECK_US                50u
#define SHM_QUEUE_LAZY_RECHECK_MAX_US            800u
#define SHM_QUEUE_RING_OFFSET                    128u
#define SHM_QUEUE_MIN_CAPACITY                   64u
#define SHM_QUEUE_MAX_CAPACITY                   0x40000000u
#define SHM_QUEUE_FRAME_LEN_OFFSET               0u
#define SHM_QUEUE_FRAME_RESERVED_OFFSET          4u
#define SHM_QUEUE_FRAME_HEADER                   8u
#define SHM_QUEUE_FRAME_ALIGN                    8u
#define SHM_QUEUE_WRAP_MARKER                    0xffffffffu
#define SHM_QUEUE_CLOSED                         1u
#define SHM_QUEUE_FRAME_SIZE(len) (SHM_QUEUE_FRAME_HEADER + (((len) + SHM_QUEUE_FRAME_ALIGN - 1u) & ~(SHM_QUEUE_FRAME_ALIGN - 1u)))
#define SHM_QUEUE_MAX_MESSAGE(capacity) ((capacity) / 2u - SHM_QUEUE_FRAME_HEADER)

/* Mailbox area (offsets from the area), slots (offsets from the slot) and slot states */
#define SHM_MAILBOX_SERVER_OFFSET                0u
#define SHM_MAILBOX_SERVED_OFFSET                4u
#define SHM_MAILBOX_REQUEST_EPOCH_OFFSET         64u
#define SHM_MAILBOX_SERVER_WAITING_OFFSET        68u
#define SHM_MAILBOX_SERVER_CLOSED                0xffffffffu
#define SHM_MAILBOX_CLOSED_LEN                   0xffffffffu
#define SHM_MAILBOX_FREE_EPOCH_OFFSET            128u
#define SHM_MAILBOX_FREE_WAITERS_OFFSET          132u
#define SHM_MAILBOX_SLOTS_OFFSET                 192u
#define SHM_MAILBOX_SLOT_STATE_OFFSET            0u
#define SHM_MAILBOX_SLOT_LEN_OFFSET              4u
#define SHM_MAILBOX_SLOT_CLIENT_OFFSET           8u
#define SHM_MAILBOX_SLOT_CLIENT_WAITING_OFFSET   12u
#define SHM_MAILBOX_SLOT_PAYLOAD_OFFSET          64u
#define SHM_MAILBOX_SLOT_WAIT_WORD_OFFSET        0u
#define SHM_MAILBOX_MAX_SLOTS                    64u
#define SHM_MAILBOX_MAX_SLOT_SIZE                0x10000000u
#define SHM_MAILBOX_ID_BITS                      24u
#define SHM_MAILBOX_ID_MASK                      0x00ffffffu
#define SHM_MAILBOX_ID_SHIFT                     8u
#define SHM_MAILBOX_LOW_MASK                     255u
#define SHM_SLOT_FREE                            0u
#define SHM_SLOT_CLAIMED                         1u
#define SHM_SLOT_REQUEST                         2u
#define SHM_SLOT_SERVING                         3u
#define SHM_SLOT_RESPONSE                        4u
#define SHM_SLOT_ABANDONED                       5u
#define SHM_SLOT_FAILED                          6u
#define SHM_MAILBOX_SLOT_STRIDE(slot_size) (SHM_MAILBOX_SLOT_PAYLOAD_OFFSET + (((slot_size) + SHM_CACHE_LINE - 1u) & ~(SHM_CACHE_LINE - 1u)))
#define SHM_MAILBOX_SLOT_OFFSET(index, slot_size) (SHM_MAILBOX_SLOTS_OFFSET + (index) * SHM_MAILBOX_SLOT_STRIDE(slot_size))
#define SHM_MAILBOX_ID_OF(word) ((word) >> SHM_MAILBOX_ID_SHIFT)
#define SHM_MAILBOX_LOW_OF(word) ((word) & SHM_MAILBOX_LOW_MASK)

/* Direct mailbox (kind 5): a mailbox's area and words, these slot states */
#define SHM_DIRECT_SLOT_FREE                     0u
#define SHM_DIRECT_SLOT_IDLE                     1u
#define SHM_DIRECT_SLOT_REQUEST                  2u
#define SHM_DIRECT_SLOT_RESPONSE                 3u
#define SHM_DIRECT_SLOT_FAILED                   4u
#define SHM_DIRECT_SLOT_ABANDONED                5u

/* Semaphore area (offsets from the area) */
#define SHM_SEMAPHORE_COUNT_OFFSET               0u
#define SHM_SEMAPHORE_WAITERS_OFFSET             4u
#define SHM_SEMAPHORE_AREA_SIZE                  64u
#define SHM_SEMAPHORE_MAX_COUNT                  0x7fffffffu

/* Broadcast area (offsets from the area; subscriber s's line at SHM_BROADCAST_SUBSCRIBERS_OFFSET + s * SHM_BROADCAST_SUBSCRIBER_LINE) and frames */
#define SHM_BROADCAST_HEAD_OFFSET                0u
#define SHM_BROADCAST_PUBLISHER_OFFSET           4u
#define SHM_BROADCAST_PUBLISHED_OFFSET           8u
#define SHM_BROADCAST_PUBLISHER_WAITING_OFFSET   12u
#define SHM_BROADCAST_INTENT_OFFSET              16u
#define SHM_BROADCAST_OLDEST_OFFSET              20u
#define SHM_BROADCAST_WAITING_OFFSET             64u
#define SHM_BROADCAST_SUBSCRIBERS_OFFSET         320u
#define SHM_BROADCAST_SUBSCRIBER_LINE            64u
#define SHM_BROADCAST_OWNER_OFFSET               0u
#define SHM_BROADCAST_TAIL_OFFSET                4u
#define SHM_BROADCAST_RECEIVED_OFFSET            8u
#define SHM_BROADCAST_MISSED_OFFSET              12u
#define SHM_BROADCAST_MAX_SUBSCRIBERS            64u
#define SHM_BROADCAST_POLICY_BLOCK               0u
#define SHM_BROADCAST_POLICY_OVERWRITE           1u
#define SHM_BROADCAST_CLOSED                     1u
#define SHM_BROADCAST_WAITING_AT                 2u
#define SHM_BROADCAST_WRAP_MARKER                0xffffffffu
#define SHM_BROADCAST_FRAME_LEN_OFFSET           0u
#define SHM_BROADCAST_FRAME_SEQ_OFFSET           4u
#define SHM_BROADCAST_FRAME_HEADER               8u
#define SHM_BROADCAST_RING_OFFSET(subscribers) (SHM_BROADCAST_SUBSCRIBERS_OFFSET + (subscribers) * SHM_BROADCAST_SUBSCRIBER_LINE)
#define SHM_BROADCAST_PARAMS_WORD(subscribers, policy) ((subscribers) | ((policy) << 8))

/* Bare-metal attach block: the last bytes of the window (offsets from the lane; lane n at n * SHM_ATTACH_LANE_SIZE) */
#define SHM_ATTACH_BLOCK_SIZE                    64u
#define SHM_ATTACH_MAX_CORES                     4u
#define SHM_ATTACH_LANE_SIZE                     16u
#define SHM_ATTACH_SESSION_OFFSET                0u
#define SHM_ATTACH_ACK_OFFSET                    4u
#define SHM_ATTACH_CHANGES_OFFSET                8u
#define SHM_ATTACH_LINKED_OFFSET                 12u
#define SHM_ATTACH_SESSION_MASK                  0x00ffffffu
#define SHM_ATTACH_CORE_SHIFT                    24u

#endif /* SHM_FORMAT_H */
