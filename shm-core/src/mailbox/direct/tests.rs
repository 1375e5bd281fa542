//! Direct mailbox tests on mock memory.
