//! `include/shm_format.h`: the format's numbers for C peers, written from
//! the constants of this module so the two cannot drift. The test
//! `shm-core/tests/c_header.rs` checks the checked-in copy.

use core::fmt::{self, Write};

use crate::format;
use crate::format::table::ChannelKind;

/// One `#define`: the C name (after `SHM_`) and its value.
type Define = (&'static str, u64);

const IDENTITY: &[Define] = &[
    ("CACHE_LINE", format::CACHE_LINE as u64),
    ("MAGIC_LO", format::MAGIC_LO as u64),
    ("MAGIC_HI", format::MAGIC_HI as u64),
    ("FORMAT_MAJOR", format::FORMAT_MAJOR as u64),
    ("FORMAT_MINOR", format::FORMAT_MINOR as u64),
    ("VERSION", format::VERSION as u64),
    ("ENDIAN_MARK", format::ENDIAN_MARK as u64),
    ("TABLE_OFFSET", format::TABLE_OFFSET as u64),
    ("MAX_CHANNELS", format::MAX_CHANNELS as u64),
    ("MAX_NAME", format::MAX_NAME as u64),
    ("AREAS_OFFSET", format::AREAS_OFFSET as u64),
];

const HEADER: &[Define] = &[
    ("HEADER_SIZE", format::header::SIZE as u64),
    ("HEADER_MAGIC_LO_OFFSET", format::header::MAGIC_LO as u64),
    ("HEADER_MAGIC_HI_OFFSET", format::header::MAGIC_HI as u64),
    ("HEADER_VERSION_OFFSET", format::header::VERSION as u64),
    ("HEADER_ENDIAN_OFFSET", format::header::ENDIAN as u64),
    ("HEADER_LAYOUT_HASH_LO_OFFSET", format::header::LAYOUT_HASH_LO as u64),
    ("HEADER_LAYOUT_HASH_HI_OFFSET", format::header::LAYOUT_HASH_HI as u64),
    ("HEADER_TOTAL_SIZE_OFFSET", format::header::TOTAL_SIZE as u64),
    ("HEADER_CHANNEL_COUNT_OFFSET", format::header::CHANNEL_COUNT as u64),
    ("HEADER_STATE_OFFSET", format::header::STATE as u64),
    ("HEADER_GENERATION_OFFSET", format::header::GENERATION as u64),
    ("HEADER_CREATOR_OFFSET", format::header::CREATOR as u64),
    ("HEADER_SESSION_OFFSET", format::header::SESSION as u64),
    ("HEADER_CREATOR_START_OFFSET", format::header::CREATOR_START as u64),
    ("HEADER_CREATOR_DOMAIN_OFFSET", format::header::CREATOR_DOMAIN as u64),
    ("HEADER_FLAGS_OFFSET", format::header::FLAGS as u64),
    ("HEADER_FLAG_LOCKED_ATOMICS", format::header::flags::LOCKED_ATOMICS as u64),
    ("HEADER_RESERVED_OFFSET", format::header::RESERVED as u64),
    ("STATE_EMPTY", format::header::state::EMPTY as u64),
    ("STATE_INITIALIZING", format::header::state::INITIALIZING as u64),
    ("STATE_READY", format::header::state::READY as u64),
    ("STATE_POISONED", format::header::state::POISONED as u64),
];

const TABLE: &[Define] = &[
    ("TABLE_ENTRY_SIZE", format::table::ENTRY_SIZE as u64),
    ("TABLE_KIND_OFFSET", format::table::KIND as u64),
    ("TABLE_RESERVED0_OFFSET", format::table::RESERVED0 as u64),
    ("TABLE_OFFSET_OFFSET", format::table::OFFSET as u64),
    ("TABLE_SIZE_OFFSET", format::table::SIZE as u64),
    ("TABLE_SLOTS_OFFSET", format::table::SLOTS as u64),
    ("TABLE_CAPACITY_OFFSET", format::table::CAPACITY as u64),
    ("TABLE_INITIAL_COUNT_OFFSET", format::table::INITIAL_COUNT as u64),
    ("TABLE_SLOT_SIZE_OFFSET", format::table::SLOT_SIZE as u64),
    ("TABLE_SUBSCRIBERS_OFFSET", format::table::SUBSCRIBERS as u64),
    ("TABLE_RESERVED1_OFFSET", format::table::RESERVED1 as u64),
    ("TABLE_NAME_OFFSET", format::table::NAME as u64),
    ("TABLE_NAME_BYTES", format::table::NAME_BYTES as u64),
    ("KIND_MAILBOX", ChannelKind::Mailbox as u64),
    ("KIND_QUEUE", ChannelKind::Queue as u64),
    ("KIND_SEMAPHORE", ChannelKind::Semaphore as u64),
    ("KIND_BROADCAST", ChannelKind::Broadcast as u64),
    ("KIND_DIRECT", ChannelKind::Direct as u64),
];

const QUEUE: &[Define] = &[
    ("QUEUE_HEAD_OFFSET", format::queue::HEAD as u64),
    ("QUEUE_PRODUCER_OFFSET", format::queue::PRODUCER as u64),
    ("QUEUE_CONSUMER_WAITING_OFFSET", format::queue::CONSUMER_WAITING as u64),
    ("QUEUE_SENT_OFFSET", format::queue::SENT as u64),
    ("QUEUE_PRODUCER_FLAGS_OFFSET", format::queue::PRODUCER_FLAGS as u64),
    ("QUEUE_TAIL_OFFSET", format::queue::TAIL as u64),
    ("QUEUE_CONSUMER_OFFSET", format::queue::CONSUMER as u64),
    ("QUEUE_PRODUCER_WAITING_OFFSET", format::queue::PRODUCER_WAITING as u64),
    ("QUEUE_RECEIVED_OFFSET", format::queue::RECEIVED as u64),
    ("QUEUE_CONSUMER_FLAGS_OFFSET", format::queue::CONSUMER_FLAGS as u64),
    ("QUEUE_LAZY_WAKE", format::queue::LAZY_WAKE as u64),
    ("QUEUE_LAZY_RECHECK_US", format::queue::LAZY_RECHECK_US as u64),
    ("QUEUE_LAZY_RECHECK_MAX_US", format::queue::LAZY_RECHECK_MAX_US as u64),
    ("QUEUE_RING_OFFSET", format::queue::RING as u64),
    ("QUEUE_MIN_CAPACITY", format::queue::MIN_CAPACITY as u64),
    ("QUEUE_MAX_CAPACITY", format::queue::MAX_CAPACITY as u64),
    ("QUEUE_FRAME_LEN_OFFSET", format::queue::FRAME_LEN as u64),
    ("QUEUE_FRAME_RESERVED_OFFSET", format::queue::FRAME_RESERVED as u64),
    ("QUEUE_FRAME_HEADER", format::queue::FRAME_HEADER as u64),
    ("QUEUE_FRAME_ALIGN", format::queue::FRAME_ALIGN as u64),
    ("QUEUE_WRAP_MARKER", format::queue::WRAP_MARKER as u64),
    ("QUEUE_CLOSED", format::queue::CLOSED as u64),
];

const MAILBOX: &[Define] = &[
    ("MAILBOX_SERVER_OFFSET", format::mailbox::SERVER as u64),
    ("MAILBOX_SERVED_OFFSET", format::mailbox::SERVED as u64),
    ("MAILBOX_REQUEST_EPOCH_OFFSET", format::mailbox::REQUEST_EPOCH as u64),
    ("MAILBOX_SERVER_WAITING_OFFSET", format::mailbox::SERVER_WAITING as u64),
    ("MAILBOX_SERVER_CLOSED", format::mailbox::SERVER_CLOSED as u64),
    ("MAILBOX_CLOSED_LEN", format::mailbox::CLOSED_LEN as u64),
    ("MAILBOX_FREE_EPOCH_OFFSET", format::mailbox::FREE_EPOCH as u64),
    ("MAILBOX_FREE_WAITERS_OFFSET", format::mailbox::FREE_WAITERS as u64),
    ("MAILBOX_SLOTS_OFFSET", format::mailbox::SLOTS as u64),
    ("MAILBOX_SLOT_STATE_OFFSET", format::mailbox::SLOT_STATE as u64),
    ("MAILBOX_SLOT_LEN_OFFSET", format::mailbox::SLOT_LEN as u64),
    ("MAILBOX_SLOT_CLIENT_OFFSET", format::mailbox::SLOT_CLIENT as u64),
    ("MAILBOX_SLOT_CLIENT_WAITING_OFFSET", format::mailbox::SLOT_CLIENT_WAITING as u64),
    ("MAILBOX_SLOT_PAYLOAD_OFFSET", format::mailbox::SLOT_PAYLOAD as u64),
    ("MAILBOX_SLOT_WAIT_WORD_OFFSET", format::mailbox::SLOT_WAIT_WORD as u64),
    ("MAILBOX_MAX_SLOTS", format::mailbox::MAX_SLOTS as u64),
    ("MAILBOX_MAX_SLOT_SIZE", format::mailbox::MAX_SLOT_SIZE as u64),
    ("MAILBOX_ID_BITS", format::mailbox::ID_BITS as u64),
    ("MAILBOX_ID_MASK", format::mailbox::ID_MASK as u64),
    ("MAILBOX_ID_SHIFT", format::mailbox::ID_SHIFT as u64),
    ("MAILBOX_LOW_MASK", format::mailbox::LOW_MASK as u64),
    ("SLOT_FREE", format::mailbox::slot::FREE as u64),
    ("SLOT_CLAIMED", format::mailbox::slot::CLAIMED as u64),
    ("SLOT_REQUEST", format::mailbox::slot::REQUEST as u64),
    ("SLOT_SERVING", format::mailbox::slot::SERVING as u64),
    ("SLOT_RESPONSE", format::mailbox::slot::RESPONSE as u64),
    ("SLOT_ABANDONED", format::mailbox::slot::ABANDONED as u64),
    ("SLOT_FAILED", format::mailbox::slot::FAILED as u64),
];

const DIRECT: &[Define] = &[
    ("DIRECT_SLOT_FREE", format::direct::slot::FREE as u64),
    ("DIRECT_SLOT_IDLE", format::direct::slot::IDLE as u64),
    ("DIRECT_SLOT_REQUEST", format::direct::slot::REQUEST as u64),
    ("DIRECT_SLOT_RESPONSE", format::direct::slot::RESPONSE as u64),
    ("DIRECT_SLOT_FAILED", format::direct::slot::FAILED as u64),
    ("DIRECT_SLOT_ABANDONED", format::direct::slot::ABANDONED as u64),
];

const SEMAPHORE: &[Define] = &[
    ("SEMAPHORE_COUNT_OFFSET", format::semaphore::COUNT as u64),
    ("SEMAPHORE_WAITERS_OFFSET", format::semaphore::WAITERS as u64),
    ("SEMAPHORE_AREA_SIZE", format::semaphore::AREA_SIZE as u64),
    ("SEMAPHORE_MAX_COUNT", format::semaphore::MAX_COUNT as u64),
];

const BROADCAST: &[Define] = &[
    ("BROADCAST_HEAD_OFFSET", format::broadcast::HEAD as u64),
    ("BROADCAST_PUBLISHER_OFFSET", format::broadcast::PUBLISHER as u64),
    ("BROADCAST_PUBLISHED_OFFSET", format::broadcast::PUBLISHED as u64),
    ("BROADCAST_PUBLISHER_WAITING_OFFSET", format::broadcast::PUBLISHER_WAITING as u64),
    ("BROADCAST_INTENT_OFFSET", format::broadcast::INTENT as u64),
    ("BROADCAST_OLDEST_OFFSET", format::broadcast::OLDEST as u64),
    ("BROADCAST_WAITING_OFFSET", format::broadcast::WAITING as u64),
    ("BROADCAST_SUBSCRIBERS_OFFSET", format::broadcast::SUBSCRIBERS as u64),
    ("BROADCAST_SUBSCRIBER_LINE", format::broadcast::SUBSCRIBER_LINE as u64),
    ("BROADCAST_OWNER_OFFSET", format::broadcast::OWNER as u64),
    ("BROADCAST_TAIL_OFFSET", format::broadcast::TAIL as u64),
    ("BROADCAST_RECEIVED_OFFSET", format::broadcast::RECEIVED as u64),
    ("BROADCAST_MISSED_OFFSET", format::broadcast::MISSED as u64),
    ("BROADCAST_MAX_SUBSCRIBERS", format::broadcast::MAX_SUBSCRIBERS as u64),
    ("BROADCAST_POLICY_BLOCK", format::broadcast::POLICY_BLOCK as u64),
    ("BROADCAST_POLICY_OVERWRITE", format::broadcast::POLICY_OVERWRITE as u64),
    ("BROADCAST_CLOSED", format::broadcast::CLOSED as u64),
    ("BROADCAST_WAITING_AT", format::broadcast::WAITING_AT as u64),
    ("BROADCAST_WRAP_MARKER", format::broadcast::WRAP_MARKER as u64),
    ("BROADCAST_FRAME_LEN_OFFSET", format::broadcast::FRAME_LEN as u64),
    ("BROADCAST_FRAME_SEQ_OFFSET", format::broadcast::FRAME_SEQ as u64),
    ("BROADCAST_FRAME_HEADER", format::broadcast::FRAME_HEADER as u64),
];

const ATTACH: &[Define] = &[
    ("ATTACH_BLOCK_SIZE", format::attach::BLOCK_SIZE as u64),
    ("ATTACH_MAX_CORES", format::attach::MAX_CORES as u64),
    ("ATTACH_LANE_SIZE", format::attach::LANE_SIZE as u64),
    ("ATTACH_SESSION_OFFSET", format::attach::SESSION as u64),
    ("ATTACH_ACK_OFFSET", format::attach::ACK as u64),
    ("ATTACH_CHANGES_OFFSET", format::attach::CHANGES as u64),
    ("ATTACH_LINKED_OFFSET", format::attach::LINKED as u64),
    ("ATTACH_SESSION_MASK", format::attach::SESSION_MASK as u64),
    ("ATTACH_CORE_SHIFT", format::attach::CORE_SHIFT as u64),
];

/// The sections of the header: a comment, then its defines, then any
/// function-like macros (the formulas of the Rust `const fn`s of the same
/// names, kept beside the constants they use).
const SECTIONS: &[(&str, &[Define], &[&str])] = &[
    ("Identity and segment map (offsets from the segment base)", IDENTITY, &[]),
    ("Header (offsets from the segment base) and its state values", HEADER, &[]),
    ("Channel table entry (offsets from the entry; entry i at SHM_TABLE_OFFSET + i * SHM_TABLE_ENTRY_SIZE)", TABLE, &[]),
    (
        "Queue area (offsets from the area) and frames (offsets from the frame)",
        QUEUE,
        &[
            "#define SHM_QUEUE_FRAME_SIZE(len) (SHM_QUEUE_FRAME_HEADER + (((len) + SHM_QUEUE_FRAME_ALIGN - 1u) & ~(SHM_QUEUE_FRAME_ALIGN - 1u)))",
            "#define SHM_QUEUE_MAX_MESSAGE(capacity) ((capacity) / 2u - SHM_QUEUE_FRAME_HEADER)",
        ],
    ),
    (
        "Mailbox area (offsets from the area), slots (offsets from the slot) and slot states",
        MAILBOX,
        &[
            "#define SHM_MAILBOX_SLOT_STRIDE(slot_size) (SHM_MAILBOX_SLOT_PAYLOAD_OFFSET + (((slot_size) + SHM_CACHE_LINE - 1u) & ~(SHM_CACHE_LINE - 1u)))",
            "#define SHM_MAILBOX_SLOT_OFFSET(index, slot_size) (SHM_MAILBOX_SLOTS_OFFSET + (index) * SHM_MAILBOX_SLOT_STRIDE(slot_size))",
            "#define SHM_MAILBOX_ID_OF(word) ((word) >> SHM_MAILBOX_ID_SHIFT)",
            "#define SHM_MAILBOX_LOW_OF(word) ((word) & SHM_MAILBOX_LOW_MASK)",
        ],
    ),
    ("Direct mailbox (kind 5): a mailbox's area and words, these slot states", DIRECT, &[]),
    ("Semaphore area (offsets from the area)", SEMAPHORE, &[]),
    (
        "Broadcast area (offsets from the area; subscriber s's line at SHM_BROADCAST_SUBSCRIBERS_OFFSET + s * SHM_BROADCAST_SUBSCRIBER_LINE) and frames",
        BROADCAST,
        &[
            "#define SHM_BROADCAST_RING_OFFSET(subscribers) (SHM_BROADCAST_SUBSCRIBERS_OFFSET + (subscribers) * SHM_BROADCAST_SUBSCRIBER_LINE)",
            "#define SHM_BROADCAST_PARAMS_WORD(subscribers, policy) ((subscribers) | ((policy) << 8))",
        ],
    ),
    ("Bare-metal attach block: the last bytes of the window (offsets from the lane; lane n at n * SHM_ATTACH_LANE_SIZE)", ATTACH, &[]),
];

const PREAMBLE: &str = "\
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
";

/// Writes the text of `shm_format.h`.
pub fn write_c_header(out: &mut dyn Write) -> fmt::Result {
    out.write_str(PREAMBLE)?;
    out.write_str("#ifndef SHM_FORMAT_H\n#define SHM_FORMAT_H\n")?;
    for (title, defines, macros) in SECTIONS {
        write!(out, "\n/* {title} */\n")?;
        for (name, value) in *defines {
            if *value > 0xffff {
                writeln!(out, "#define SHM_{name:<36} 0x{value:08x}u")?;
            } else {
                writeln!(out, "#define SHM_{name:<36} {value}u")?;
            }
        }
        for line in *macros {
            writeln!(out, "{line}")?;
        }
    }
    out.write_str("\n#endif /* SHM_FORMAT_H */\n")
}
