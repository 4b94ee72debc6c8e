"""DNS steps: resolve a name for one record type (dnspython's async resolver)."""

from __future__ import annotations

import time

import dns.asyncresolver
import dns.exception
import dns.rcode
import dns.resolver

from synthetic_monitor.checks.base import StepContext, StepOutcome
from synthetic_monitor.conditions import Observation
from synthetic_monitor.config.model import DnsStep
from synthetic_monitor.templates import render_text

__all__ = ["DnsExecutor"]


class DnsExecutor:
    """Query the system's resolvers, or ``nameserver`` when the step names one."""

    async def execute(self, step: DnsStep, context: StepContext) -> StepOutcome:
        """Resolve; NXDOMAIN and SERVFAIL are observed as ``[DNS_RCODE]``, not raised."""
        name = render_text(step.query, context.values)
        if step.nameserver:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [step.nameserver]
            resolver.port = step.port
        else:
            resolver = dns.asyncresolver.Resolver()
        started = time.perf_counter()
        rcode, answers, error = "NOERROR", [], None
        try:
            answer = await resolver.resolve(
                name, step.record, lifetime=context.timeout, raise_on_no_answer=False
            )
            rcode = dns.rcode.to_text(answer.response.rcode())
            if answer.rrset is not None:
                answers = [record.to_text() for record in answer.rrset]
        except dns.resolver.NXDOMAIN:
            rcode = "NXDOMAIN"
        except dns.resolver.NoNameservers as failure:
            rcode, error = "SERVFAIL", f"no nameserver answered for {name}: {failure}"
        except dns.exception.Timeout:
            elapsed = (time.perf_counter() - started) * 1000
            return StepOutcome(
                Observation(kind="dns", response_time_ms=elapsed),
                error=f"resolving {name} {step.record} timed out after {context.timeout:g}s",
            )
        except dns.exception.DNSException as failure:
            elapsed = (time.perf_counter() - started) * 1000
            return StepOutcome(
                Observation(kind="dns", response_time_ms=elapsed),
                error=f"resolving {name} {step.record} failed: {failure}",
            )
        elapsed = (time.perf_counter() - started) * 1000
        observation = Observation(
            kind="dns",
            response_time_ms=elapsed,
            connected=error is None,
            body=answers[0] if answers else "",
            dns_rcode=rcode,
            dns_answers=answers,
        )
        return StepOutcome(observation, error=error)
