import { generateKeyPair } from '@trellis/crypto';
import {
  AddressAllocator,
  AddressPoolExhaustedError,
  FULL_POOL_SIZE,
} from '../../src/domain/address-allocator';

describe('AddressAllocator', () => {
  it('hands out addresses inside 100.64.0.0/10, never .0 or .255', () => {
    const allocator = new AddressAllocator();
    const taken = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const a = allocator.allocate(generateKeyPair().publicKey, taken);
      const [o1, o2, , o4] = a.split('.').map(Number);
      expect(o1).toBe(100);
      expect(o2! >= 64 && o2! <= 127).toBe(true);
      expect(o4).not.toBe(0);
      expect(o4).not.toBe(255);
      expect(taken.has(a)).toBe(false);
      taken.add(a);
    }
    expect(FULL_POOL_SIZE).toBe(16384 * 254);
  });

  it('is stable: the same key gets the same address for the same taken set', () => {
    const allocator = new AddressAllocator();
    const key = generateKeyPair().publicKey;
    const taken = new Set(['100.64.0.1']);
    expect(allocator.allocate(key, taken)).toBe(allocator.allocate(key, taken));
    expect(new AddressAllocator().allocate(key, new Set())).toBe(allocator.allocate(key, new Set()));
  });

  it('skips taken addresses (in use or held back for the grace period) by probing onwards', () => {
    const allocator = new AddressAllocator({ poolSize: 8 });
    const key = generateKeyPair().publicKey;
    const first = allocator.allocate(key, new Set());
    const second = allocator.allocate(key, new Set([first]));
    expect(second).not.toBe(first);
    expect(allocator.contains(second)).toBe(true);
  });

  it('fills a small pool completely and then fails with a clear error', () => {
    const allocator = new AddressAllocator({ poolSize: 5 });
    const taken = new Set<string>();
    for (let i = 0; i < 5; i++) taken.add(allocator.allocate(generateKeyPair().publicKey, taken));
    expect(taken.size).toBe(5);
    for (const a of taken) expect(allocator.contains(a)).toBe(true);
    let error: unknown;
    try {
      allocator.allocate(generateKeyPair().publicKey, taken);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AddressPoolExhaustedError);
    expect((error as AddressPoolExhaustedError).status).toBe(507);
    expect((error as Error).message).toMatch(/no free overlay address/);
  });

  it('walks every address of the pool exactly once', () => {
    const allocator = new AddressAllocator({ poolSize: 600 });
    const seen = [...allocator.probeOrder(generateKeyPair().publicKey)];
    expect(seen).toHaveLength(600);
    expect(new Set(seen).size).toBe(600);
    expect(seen).toContain('100.64.0.1');
    expect(seen).toContain('100.64.1.1');
    expect(seen).not.toContain('100.64.0.255');
  });

  it('rejects a pool size below one', () => {
    expect(() => new AddressAllocator({ poolSize: 0 })).toThrow();
  });
});
