/**
 * The largest frame a broker sends an agent, and the largest text a compressed one (capability 3:
 * a netmap snapshot as a binary frame of raw DEFLATE) may inflate to: a snapshot of a full-mesh
 * account of about 150,000 devices (~400 bytes per peer). Frames from agents stay within
 * MAX_CONTROL_FRAME_BYTES.
 */
export const MAX_SERVER_FRAME_BYTES = 64 * 1024 * 1024;
