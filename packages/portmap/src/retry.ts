// Short retransmission schedules: the client tries protocols in turn, so silence must cost little.

export interface MapperTimeouts {
  /** Waits after each UDP transmission (NAT-PMP, PCP, SSDP), milliseconds. */
  udpWaitsMs: readonly number[];
  /** Deadline of one HTTP request (UPnP description and SOAP), milliseconds. */
  httpTimeoutMs: number;
}

export const DEFAULT_TIMEOUTS: MapperTimeouts = { udpWaitsMs: [250, 500, 1000], httpTimeoutMs: 3000 };
