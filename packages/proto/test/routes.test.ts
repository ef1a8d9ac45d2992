import { EXIT_ROUTE, MAX_DEVICE_ROUTES, RoutePrefix, routePrefixProblem, SubnetRoute } from '../src';

describe('route prefixes', () => {
  it.each(['192.168.1.0/24', '10.0.0.0/8', '172.16.0.0/12', '203.0.113.7/32', EXIT_ROUTE])(
    'takes %s',
    (p) => {
      expect(routePrefixProblem(p)).toBeNull();
      expect(RoutePrefix.safeParse(p).success).toBe(true);
    },
  );

  it.each([
    ['192.168.1.0', 'a.b.c.d/n'],
    ['192.168.1.0/08', 'a.b.c.d/n'],
    ['10.0.0.0/008', 'a.b.c.d/n'],
    ['192.168.1.0/33', 'a.b.c.d/n'],
    ['192.168.1.1/24', 'host bits'],
    ['0.0.0.0/00', 'a.b.c.d/n'],
    ['128.0.0.0/1', '/8 or longer'],
    ['8.0.0.0/7', '/8 or longer'],
    ['100.64.0.0/16', 'overlay'],
    ['100.0.0.0/8', 'overlay'],
    ['0.0.0.0/8', '0.0.0.0/8'],
    ['127.0.0.0/8', '127.0.0.0/8'],
    ['169.254.10.0/24', '169.254.0.0/16'],
    ['224.0.0.0/8', '224.0.0.0/4'],
    ['239.1.1.1/32', '224.0.0.0/4'],
    ['255.255.255.255/32', '240.0.0.0/4'],
  ])('refuses %s (%s)', (p, why) => {
    expect(routePrefixProblem(p)).toContain(why);
    expect(RoutePrefix.safeParse(p).success).toBe(false);
  });

  it('keeps the exit route out of subnet routes', () => {
    expect(SubnetRoute.safeParse(EXIT_ROUTE).success).toBe(false);
    expect(SubnetRoute.safeParse('10.1.0.0/16').success).toBe(true);
  });

  it('allows a device a few dozen routes', () => {
    expect(MAX_DEVICE_ROUTES).toBe(32);
  });
});
