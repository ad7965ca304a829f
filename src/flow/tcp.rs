//! One direction of a TCP connection: in-order delivery, a bounded out-of-order buffer,
//! retransmission and overlap trimming, sequence wrap-around, gap detection.
