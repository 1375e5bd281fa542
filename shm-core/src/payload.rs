//! Copies between local memory and payload bytes that a peer may write at
//! the same time.
//!
//! The zero-copy handles ([`WriteGrant`](crate::queue::WriteGrant),
//! [`ReadGrant`](crate::queue::ReadGrant), the mailbox's `SlotGuard`,
//! `Request` and `Response`) lend payload bytes as `&[u8]` / `&mut [u8]`.
//! That is sound while the peer follows the protocol, which grants those
//! bytes to the holder alone. A buggy or hostile peer that writes them
//! anyway makes the slice a data race under Rust's rules, and code that
//! checks a byte and then uses it may see two different values.
//!
//! The copying calls (`send`, `recv`, `call`, `Request::read_into`,
//! `Request::respond_with`) never form a reference to shared bytes: they copy
//! with the functions below, one relaxed atomic access (or, reading on
//! x86_64, one 16-byte load in inline assembly) at a time. A racing
//! peer can then make a copy see a mix of old and new bytes, nothing worse,
//! and the local copy does not change after the call returns.
//!
//! # Design
//!
//! Relaxed atomic loads and stores of a machine word compile to plain moves.
//! Copying in, 16-byte stores measured no faster; copying out on x86_64,
//! 16-byte loads did (see `load16`), so there (with SSE2, outside Miri,
//! sanitizers and fuzzing: `cfg(shm_wide_copy)`, set by the build script)
//! the copy out reads 16 bytes per load in inline assembly, each byte of
//! which is single-copy atomic, as the word's bytes are.
//! Ordering comes from the protocol's Acquire/Release on the control words
//! around the copy, not from these accesses.

#[cfg(not(target_has_atomic = "64"))]
use core::sync::atomic::AtomicU32 as Word;
#[cfg(target_has_atomic = "64")]
use core::sync::atomic::AtomicU64 as Word;
use core::sync::atomic::{AtomicU8, Ordering::Relaxed};

#[cfg(target_has_atomic = "64")]
type Int = u64;
#[cfg(not(target_has_atomic = "64"))]
type Int = u32;

const WORD: usize = core::mem::size_of::<Word>();

/// Copies `dst.len()` bytes from shared memory at `src` into `dst`: 16 bytes
/// per load where `cfg(shm_wide_copy)` (see `load16`), the rest (and
/// everything elsewhere) one atomic word or byte at a time.
///
/// # Safety
///
/// `src..src + dst.len()` is valid for reads and writes and is accessed by
/// others only through atomics or from other processes (never through Rust
/// references in this process).
#[inline]
pub(crate) unsafe fn copy_out(src: *const u8, dst: &mut [u8]) {
    #[cfg(all(shm_wide_copy, not(miri)))]
    {
        let done = dst.len() / 16 * 16;
        let mut chunks = dst.chunks_exact_mut(16);
        for (k, chunk) in (&mut chunks).enumerate() {
            // SAFETY: `k * 16 + 16 <= dst.len()`: in range per the contract.
            chunk.copy_from_slice(&unsafe { load16(src.add(k * 16)) });
        }
        // SAFETY: `done <= dst.len()`: the rest is in range too.
        unsafe { copy_out_words(src.add(done), chunks.into_remainder()) };
    }
    #[cfg(not(all(shm_wide_copy, not(miri))))]
    // SAFETY: the caller's contract, passed on.
    unsafe {
        copy_out_words(src, dst)
    }
}

/// Loads 16 bytes at `src` (any alignment) with one SSE2 load.
///
/// Eight-byte atomic loads made the copying queue row 2x slower than this
/// at 64-byte messages (2-vCPU VM, 14–17 M msgs/s against 28–31 M, the
/// same as `memcpy`; 56-byte messages, whose frames fill whole cache
/// lines, ran at 29–31 M either way). Our reading: a 72-byte frame
/// shares a cache line with the next, which the producer writes meanwhile,
/// and the more loads touch that line, the more often that write costs the
/// reader; not confirmed with hardware counters (none on that VM). The
/// load is inline assembly, not a Rust read: an x86 load is at least
/// byte-wise single-copy atomic (not word-wise, which nothing needs: the
/// payload is opaque bytes), so a peer writing the bytes meanwhile makes
/// the copy see a mix of old and new bytes, as the atomic copy would, and
/// no data race the compiler may assume away.
///
/// # Safety
///
/// `src..src + 16` is valid for reads, per [`copy_out`]'s contract.
#[cfg(all(shm_wide_copy, not(miri)))]
#[inline(always)]
unsafe fn load16(src: *const u8) -> [u8; 16] {
    let v: core::arch::x86_64::__m128i;
    // SAFETY: the caller keeps `src..src + 16` readable; `movdqu` takes any
    // alignment, writes no memory, touches no stack or flags.
    unsafe {
        core::arch::asm!(
            "movdqu {v}, [{p}]",
            p = in(reg) src,
            v = out(xmm_reg) v,
            options(nostack, preserves_flags, readonly),
        );
    }
    // SAFETY: `__m128i` is 16 plain bytes; every bit pattern is a valid
    // `[u8; 16]`.
    unsafe { core::mem::transmute::<core::arch::x86_64::__m128i, [u8; 16]>(v) }
}

/// [`copy_out`], one relaxed atomic word (and the unaligned bytes around
/// them, one atomic byte each) at a time. Same contract.
unsafe fn copy_out_words(src: *const u8, dst: &mut [u8]) {
    let src = src.cast_mut();
    let head = src.align_offset(WORD).min(dst.len());
    let (first, rest) = dst.split_at_mut(head);
    for (i, b) in first.iter_mut().enumerate() {
        // SAFETY: `i < dst.len()`: in range per the contract; a byte is
        // always aligned for `AtomicU8`.
        *b = unsafe { AtomicU8::from_ptr(src.add(i)) }.load(Relaxed);
    }
    // SAFETY: `head <= dst.len()`: still in range.
    let src = unsafe { src.add(head) };
    let done = rest.len() / WORD * WORD;
    let mut chunks = rest.chunks_exact_mut(WORD);
    for (k, chunk) in (&mut chunks).enumerate() {
        // SAFETY: in range per the contract; `src` is `WORD`-aligned after
        // `head` bytes, so each `k * WORD` step is too.
        let w = unsafe { Word::from_ptr(src.add(k * WORD).cast()) }.load(Relaxed);
        chunk.copy_from_slice(&w.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        // SAFETY: in range per the contract, byte-aligned.
        *b = unsafe { AtomicU8::from_ptr(src.add(done + i)) }.load(Relaxed);
    }
}

/// Copies `src` into shared memory at `dst`.
///
/// # Safety
///
/// As for [`copy_out`], for `dst..dst + src.len()`.
pub(crate) unsafe fn copy_in(src: &[u8], dst: *mut u8) {
    let head = dst.align_offset(WORD).min(src.len());
    let (first, rest) = src.split_at(head);
    for (i, &b) in first.iter().enumerate() {
        // SAFETY: in range per the contract, byte-aligned.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(b, Relaxed);
    }
    // SAFETY: `head <= src.len()`: still in range.
    let dst = unsafe { dst.add(head) };
    let mut chunks = rest.chunks_exact(WORD);
    for (k, chunk) in (&mut chunks).enumerate() {
        let mut bytes = [0u8; WORD];
        bytes.copy_from_slice(chunk);
        // SAFETY: in range per the contract; `dst` is `WORD`-aligned after
        // `head` bytes.
        unsafe { Word::from_ptr(dst.add(k * WORD).cast()) }.store(Int::from_ne_bytes(bytes), Relaxed);
    }
    let done = rest.len() / WORD * WORD;
    for (i, &b) in chunks.remainder().iter().enumerate() {
        // SAFETY: in range per the contract, byte-aligned.
        unsafe { AtomicU8::from_ptr(dst.add(done + i)) }.store(b, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::{copy_in, copy_out};

    /// Every offset and length around the word size, both directions.
    #[test]
    fn copies_every_alignment_and_length() {
        let mut shared = std::vec![0u64; 8];
        let base = shared.as_mut_ptr().cast::<u8>();
        let data: std::vec::Vec<u8> = (1..=40).collect();
        for off in 0..9 {
            for len in 0..=40 {
                // SAFETY: `off + len <= 48 < 64` bytes of `shared`, which no
                // reference covers while the raw pointer is used.
                unsafe {
                    core::ptr::write_bytes(base, 0, 64);
                    copy_in(&data[..len], base.add(off));
                    let mut out = [0u8; 40];
                    copy_out(base.add(off), &mut out[..len]);
                    assert_eq!(&out[..len], &data[..len], "offset {off}, length {len}");
                    assert_eq!(*base.add(off + len), 0, "wrote past the end at offset {off}, length {len}");
                    if off > 0 {
                        assert_eq!(*base.add(off - 1), 0, "wrote before the start at offset {off}");
                    }
                }
            }
        }
    }
}
