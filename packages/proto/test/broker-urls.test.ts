import { brokerHostName, MAX_BROKER_URLS, parseBrokerUrl, parseBrokerUrls } from '@trellis/proto';

describe('broker URL lists', () => {
  it('takes repeated URLs and comma-separated lists, normalized, in order, without duplicates', () => {
    expect(
      parseBrokerUrls([
        'https://a.example:8443',
        'https://b.example:8443/, https://10.0.0.3:8443,',
        'https://A.example:8443/',
      ]),
    ).toEqual(['https://a.example:8443/', 'https://b.example:8443/', 'https://10.0.0.3:8443/']);
  });

  it('refuses what is not a broker origin, naming the entry', () => {
    expect(() => parseBrokerUrls(['https://a.example, http://b.example'])).toThrow(
      'bad broker URL "http://b.example": the broker is only reached over https://',
    );
    expect(() => parseBrokerUrls(['https://a.example/api'])).toThrow(
      'bad broker URL "https://a.example/api": give only https://HOST[:PORT]',
    );
    expect(() => parseBrokerUrls(['not a url'])).toThrow(
      'bad broker URL "not a url": expected https://HOST[:PORT]',
    );
    expect(() => parseBrokerUrl('https://user:pw@a.example')).toThrow('give only https://HOST[:PORT]');
  });

  it('refuses an empty list and one longer than the limit', () => {
    expect(() => parseBrokerUrls([])).toThrow('no broker URL given');
    expect(() => parseBrokerUrls([' , ,'])).toThrow('no broker URL given');
    const many = Array.from({ length: MAX_BROKER_URLS + 1 }, (_, i) => `https://b${i}.example`);
    expect(() => parseBrokerUrls([many.join(',')])).toThrow(
      `17 broker URLs given; at most ${MAX_BROKER_URLS}`,
    );
    expect(parseBrokerUrls(many.slice(0, MAX_BROKER_URLS))).toHaveLength(MAX_BROKER_URLS);
  });

  it('names the host to resolve, and none for IP literals', () => {
    expect(brokerHostName('https://brokers.example:8443/')).toBe('brokers.example');
    expect(brokerHostName('https://192.0.2.7:8443/')).toBeNull();
    expect(brokerHostName('https://[2001:db8::1]:8443/')).toBeNull();
    expect(brokerHostName('wss://brokers.example/api/v1/relay/control')).toBe('brokers.example');
  });
});
