// The lab's host-netfilter bypass for its chain bridges (src/lab/hostnet.ts): which rules, in
// which order, and that `lab down` finds exactly this stack's rules in `iptables -S`.
import { describe, expect, it } from 'vitest';
import { bridgeBypassRules, bypassComment, bypassDeletes } from '../../src/lab/hostnet.ts';

describe('host netfilter bypass for the lab chain bridges', () => {
  const rules = bridgeBypassRules('ossh', [
    { bridge: 'br-d8c29924ff0e', subnet: '10.81.1.0/24', gateway: '10.81.1.1' },
  ]);

  it('container ↔ container on the bridge: untracked and accepted; the gateway (host) excluded', () => {
    const tag = ['-m', 'comment', '--comment', 'wharf-lab:ossh:chain-bypass'];
    expect(rules).toEqual([
      [
        'raw',
        'PREROUTING',
        '-i',
        'br-d8c29924ff0e',
        '-s',
        '10.81.1.0/24',
        '-d',
        '10.81.1.0/24',
        ...tag,
        '-j',
        'NOTRACK',
      ],
      ['raw', 'PREROUTING', '-i', 'br-d8c29924ff0e', '-d', '10.81.1.1', ...tag, '-j', 'RETURN'],
      ['filter', 'DOCKER-USER', '-i', 'br-d8c29924ff0e', '-o', 'br-d8c29924ff0e', ...tag, '-j', 'ACCEPT'],
    ]);
  });

  it('lab down deletes only its own stack’s rules', () => {
    const listing = [
      '-P PREROUTING ACCEPT',
      // iptables-nft quotes comments in its listing
      `-A PREROUTING -s 10.81.1.0/24 -d 10.81.1.0/24 -i br-d8c29924ff0e -m comment --comment "${bypassComment('ossh')}" -j NOTRACK`,
      `-A PREROUTING -d 10.86.1.1/32 -i br-aaaaaaaaaaaa -m comment --comment ${bypassComment('scen2')} -j RETURN`,
      `-A PREROUTING -d 10.81.1.1/32 -i br-d8c29924ff0e -m comment --comment ${bypassComment('ossh')}x -j RETURN`,
    ].join('\n');
    expect(bypassDeletes('ossh', 'raw', listing)).toEqual([
      [
        '-t',
        'raw',
        '-D',
        'PREROUTING',
        '-s',
        '10.81.1.0/24',
        '-d',
        '10.81.1.0/24',
        '-i',
        'br-d8c29924ff0e',
        '-m',
        'comment',
        '--comment',
        'wharf-lab:ossh:chain-bypass',
        '-j',
        'NOTRACK',
      ],
    ]);
  });
});
