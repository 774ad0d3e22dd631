"""The end-to-end benchmark model (scenarios/bench-p2c.ron) in SimPy, written the textbook way.

Users send Poisson arrivals at 5600/s; each request is one process: network hop to the load
balancer, which picks the less loaded of two distinct random servers (power of two choices)
by requests outstanding, network hop to that server, a `simpy.Resource` (one worker) with an exponential
1 ms service time, then the hops back. Network latency is log-normal (median 200 us, p99 1 ms).
Prints the request count, mean latency and wall time per request.
"""

import math
import random
import sys
import time

import simpy

SERVERS = 8
RATE = 5600.0
SERVICE_MEAN = 0.001
MU = math.log(200e-6)
SIGMA = (math.log(1e-3) - MU) / 2.326347874040841


def latency(rng):
    return rng.lognormvariate(MU, SIGMA)


def request(env, rng, servers, outstanding, latencies):
    start = env.now
    yield env.timeout(latency(rng))  # client -> load balancer
    # Two distinct servers, as archsim's PowerOfTwoChoices picks them; ties go to the first.
    a = rng.randrange(SERVERS)
    b = (a + 1 + rng.randrange(SERVERS - 1)) % SERVERS
    s = b if outstanding[b] < outstanding[a] else a
    outstanding[s] += 1
    yield env.timeout(latency(rng))  # load balancer -> server
    with servers[s].request() as slot:
        yield slot
        yield env.timeout(rng.expovariate(1.0 / SERVICE_MEAN))
    yield env.timeout(latency(rng))  # server -> load balancer
    outstanding[s] -= 1
    yield env.timeout(latency(rng))  # load balancer -> client
    latencies.append(env.now - start)


def users(env, rng, n, servers, outstanding, latencies):
    for _ in range(n):
        yield env.timeout(rng.expovariate(RATE))
        env.process(request(env, rng, servers, outstanding, latencies))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rng = random.Random(1)
    env = simpy.Environment()
    servers = [simpy.Resource(env, capacity=1) for _ in range(SERVERS)]
    outstanding = [0] * SERVERS
    latencies = []
    env.process(users(env, rng, n, servers, outstanding, latencies))
    start = time.perf_counter()
    env.run()
    wall = time.perf_counter() - start
    print(
        f"simpy: {len(latencies)} requests, mean latency {1e3 * sum(latencies) / len(latencies):.3f} ms, "
        f"{wall:.2f} s, {1e9 * wall / n:.0f} ns/request"
    )


if __name__ == "__main__":
    main()
