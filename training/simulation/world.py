"""The hidden ground truth: how contacts respond to content, and how their journey moves day by day.

Everything here works on whole arrays of contacts. A send of block c to contact i on the current day opens
with ``p_open``, then (given an open) is clicked with ``q`` or, if not clicked, ends in an unsubscribe with
``u``; a click on a gated block leads to a download with ``r``; a click on an event leads to a registration
with ``r`` and attendance with ``att``. ``expected_reward`` is the exact expectation of the configured reward
under these probabilities, and ``send`` samples outcomes from the very same probabilities, so policies and
off-policy estimates can be checked against truth.

What drives the probabilities (hidden from policies): stage fit of the block, topic interest, persona fit and
format taste, fatigue from recent touches (a sales offer touches harder), a streak of sales offers, sales
offers before the consultation stage, and repeats of a block already sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from features.schemas import STAGE_IDS, Channel, EventType, LeadStatus
from training.simulation.catalog_arrays import (
    FORMATS,
    KIND_CLICK,
    KIND_DOWNLOAD,
    KIND_WEBINAR,
    KIND_WORKSHOP,
    CatalogArrays,
)
from training.simulation.events import (
    ANONYMOUS,
    BOTH,
    CHANNEL_CODE,
    CHANNELS,
    US_PER_DAY,
    VALUE_SLOT,
    EventBuffer,
)
from training.simulation.personas import Persona
from training.simulation.population import NEVER, STAGE, STATUS, STATUSES, Population, status_table

FATIGUE_DAYS = 4.0
READINESS_DAYS = 30.0
ENGAGEMENT_DAYS = 30.0
SALES_STREAK_GAP = 7
MQL_READINESS = 3.0
STAGE_PROGRESS = 2.0
CHANNEL_OPEN = {
    Channel.EMAIL: 1.0,
    Channel.WEB: 0.35,
    Channel.SMS: 0.9,
    Channel.IN_APP: 0.6,
    Channel.SOCIAL: 0.2,
    Channel.PUSH: 0.5,
    Channel.DIRECT_MAIL: 0.5,
    Channel.PHONE: 0.0,
}
UNSUBSCRIBABLE = (CHANNEL_CODE[Channel.EMAIL], CHANNEL_CODE[Channel.SMS])
PAGES = ("blog", "product", "pricing", "pricing", "docs", "docs", "pricing", "support", "whats-new")
"""Page an organic visit lands on, by stage index."""
LEAD_LIKE = status_table((LeadStatus.LEAD, LeadStatus.MQL, LeadStatus.LOST))
PAYING = status_table((LeadStatus.WON, LeadStatus.ACTIVE, LeadStatus.AT_RISK))
_UNSUBSCRIBABLE = np.zeros(len(CHANNELS) + 1, bool)
_UNSUBSCRIBABLE[list(UNSUBSCRIBABLE)] = True


@dataclass(frozen=True)
class RewardWeights:
    """Reward of each outcome of a send; an unsubscribe costs; ``expected_reward`` uses the same."""

    open: float = 0.0
    click: float = 1.0
    download: float = 2.0
    register: float = 0.5
    attend: float = 3.0
    unsubscribe: float = -5.0


class Response(NamedTuple):
    """Outcome probabilities of sending blocks to contacts (arrays of the broadcast shape of the inputs)."""

    channel: np.ndarray
    p_open: np.ndarray
    q_click: np.ndarray
    r_consume: np.ndarray
    p_attend: np.ndarray
    u_unsub: np.ndarray


class Outcome(NamedTuple):
    """Sampled outcomes of one batch of sends (bool arrays of length n_send) and realised rewards."""

    opened: np.ndarray
    clicked: np.ndarray
    consumed: np.ndarray
    attended: np.ndarray
    unsubscribed: np.ndarray
    reward: np.ndarray


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class World:
    """Hidden state of a population plus the rules that move it; ``day`` is the day being simulated."""

    def __init__(
        self,
        population: Population,
        catalog: CatalogArrays,
        personas: Sequence[Persona],
        weights: RewardWeights,
        start_us: int,
        rng: np.random.Generator,
        next_stage_eligible: bool = True,
    ) -> None:
        self.pop = population
        self.next_stage_eligible = next_stage_eligible
        self.catalog = catalog
        self.weights = weights
        self.start_us = start_us
        self.rng = rng
        self.day = 0
        self._open0 = np.array([p.open_rate for p in personas])
        self._click0 = np.array([p.click_bias for p in personas])
        self._fmt_aff = np.array([[p.formats.get(f, 0.0) for f in FORMATS] for p in personas])
        self._consume = np.array([p.consume_rate for p in personas])
        self._attend = np.array([p.attend_rate for p in personas])
        self._fat_sens = np.array([p.fatigue_sensitivity for p in personas])
        self._sales_av = np.array([p.sales_aversion for p in personas])
        self._unsub0 = np.array([p.unsubscribe_bias for p in personas])
        self._buy = np.array([p.buy_propensity for p in personas])
        self._win = np.array([p.win_rate for p in personas])
        self._visit = np.array([p.visit_rate for p in personas])
        self._renewal = np.array([p.renewal_days for p in personas])
        self._chan_open = np.array([CHANNEL_OPEN[c] for c in CHANNELS] + [0.0])
        first = np.zeros(4)
        first[KIND_DOWNLOAD] = weights.download
        first[KIND_WEBINAR] = first[KIND_WORKSHOP] = weights.register
        self._first_reward = first
        # Delivery channel for every consent pattern (bitmask over channels) and block, looked up per pair.
        self._channel_bits = np.int64(1) << np.arange(len(CHANNELS), dtype=np.int64)
        patterns = np.arange(1 << len(CHANNELS))[:, None]
        delivery = np.full((len(patterns), catalog.n), -1, np.int64)
        for k in range(catalog.channels.shape[1] - 1, -1, -1):
            code = catalog.channels[:, k].astype(np.int64)[None, :]
            ok = (code >= 0) & (((patterns >> np.maximum(code, 0)) & 1) == 1)
            delivery = np.where(ok, code, delivery)
        self._delivery = delivery

    # ----------------------------------------------------------------------------------------------- truth
    def delivery_channel(self, contacts: np.ndarray, content: np.ndarray) -> np.ndarray:
        """Channel code each block would go out on: its first channel the contact consented to, or -1."""
        bits = self.pop.consent.astype(np.int64) @ self._channel_bits
        return self._delivery[bits[contacts], content]

    def response(self, contacts: np.ndarray, content: np.ndarray, day: int | None = None) -> Response:
        """Outcome probabilities of sending ``content`` to ``contacts`` (broadcast together) on ``day``.

        ``day`` defaults to the current day; a later day assumes no touches until then (fatigue decays).
        """
        i, c = np.asarray(contacts, np.int64), np.asarray(content, np.int64)
        shape = np.broadcast_shapes(i.shape, c.shape)
        delta = self._check_day(day)
        pop, cat = self.pop, self.catalog
        if i.size and (i.min() < 0 or i.max() >= pop.n):
            raise IndexError(f"`contact_indices` must be in [0, {pop.n}), but got {i.min()}..{i.max()}")
        if c.size and (c.min() < 0 or c.max() >= cat.n):
            raise IndexError(f"`content_indices` must be in [0, {cat.n}), but got {c.min()}..{c.max()}")
        p, s = pop.persona[i], pop.stage[i]
        fit = cat.stage_fit[c, s]
        nxt = cat.stage_fit[c, np.minimum(s + 1, cat.stage_fit.shape[1] - 1)] & (s < STAGE["closing"])
        topic = sum(pop.interest[i, t] * cat.topic[c, t] for t in range(cat.topic.shape[1]))
        sales = cat.sales[c]
        fs = self._fat_sens[p]
        fatigue = pop.fatigue[i] * np.exp(-delta / FATIGUE_DAYS) + 1.0 + 0.5 * sales
        recent_sales = (self.day + delta - pop.last_sales_day[i]) < SALES_STREAK_GAP
        streak = np.where(sales, np.where(recent_sales, pop.sales_streak[i], 0) + 1, 0)
        early_sales = sales & (s < STAGE["consultation"])
        persona_fit = cat.persona_fit[c, p]
        logit = (
            self._click0[p]
            + 1.6 * fit
            + 0.6 * nxt
            + 3.0 * topic
            + 1.0 * persona_fit
            + 1.5 * self._fmt_aff[p, cat.fmt[c]]
            - 0.35 * fs * fatigue
            - 0.8 * pop.times_sent[i, c]
            - 1.2 * early_sales * self._sales_av[p]
        )
        channel = self.delivery_channel(i, c)
        p_open = self._open0[p] * self._chan_open[channel] * np.exp(-0.15 * fs * fatigue)
        kind = cat.kind[c]
        r = np.where(kind == KIND_CLICK, 0.0, self._consume[p])
        att = np.where((kind == KIND_WEBINAR) | (kind == KIND_WORKSHOP), self._attend[p], 0.0)
        unsub_logit = (
            self._unsub0[p] + 0.35 * fs * fatigue + 0.3 * streak + 0.8 * (~fit) + 0.8 * (~persona_fit)
        )
        u = np.where(_UNSUBSCRIBABLE[channel], _sigmoid(unsub_logit), 0.0)
        p_open = np.where(channel >= 0, p_open, 0.0)
        return Response(*(np.broadcast_to(a, shape) for a in (channel, p_open, _sigmoid(logit), r, att, u)))

    def expected_reward(
        self, contacts: np.ndarray, content: np.ndarray, day: int | None = None
    ) -> np.ndarray:
        """True expected reward of sending ``content`` to ``contacts`` (broadcast), from hidden state.

        Pass ``contacts[:, None]`` and ``content[None, :]`` for a (n_contacts, n_content) matrix.
        """
        res = self.response(contacts, content, day)
        w = self.weights
        kind = self.catalog.kind[np.asarray(content)]
        after_click = w.click + res.r_consume * (self._first_reward[kind] + res.p_attend * w.attend)
        value = res.p_open * (
            w.open + res.q_click * after_click + (1.0 - res.q_click) * res.u_unsub * w.unsubscribe
        )
        return np.broadcast_to(np.asarray(value, float), res.p_open.shape).copy()

    def _check_day(self, day: int | None) -> int:
        if day is None:
            return 0
        if day < self.day:
            raise ValueError(f"`day` must be >= the simulator's current day {self.day}, but got {day}")
        return int(day - self.day)

    # ----------------------------------------------------------------------------------------- guardrails
    def eligible(self, contacts: np.ndarray) -> np.ndarray:
        """Basic guardrails, shape (n, C): a consented channel, stage fit (the current stage, and the next
        pre-sale stage if ``next_stage_eligible``), not consumed, prerequisite consumed, customer programs for
        customers only."""
        pop, cat = self.pop, self.catalog
        i = np.asarray(contacts, np.int64)
        ok = self.delivery_channel(i[:, None], np.arange(cat.n)[None, :]) >= 0
        stage_ok = cat.stage_fit[:, pop.stage[i]].T
        if self.next_stage_eligible:
            nxt = np.minimum(pop.stage[i] + 1, cat.stage_fit.shape[1] - 1)
            stage_ok = stage_ok | (cat.stage_fit[:, nxt].T & (pop.stage[i] < STAGE["closing"])[:, None])
        ok &= stage_ok
        ok &= ~pop.consumed[i]
        pre = cat.prerequisite
        ok &= (pre < 0)[None, :] | pop.consumed[i][:, np.maximum(pre, 0)]
        ok &= ~cat.customer_only[None, :] | pop.is_customer[i][:, None]
        return ok

    # --------------------------------------------------------------------------------------------- sends
    def send(self, contacts: np.ndarray, content: np.ndarray, events: EventBuffer) -> Outcome:
        """Deliver one block per contact today: sample outcomes, emit events, update the hidden state."""
        pop, cat, w, rng = self.pop, self.catalog, self.weights, self.rng
        i, c = np.asarray(contacts, np.int64), np.asarray(content, np.int64)
        res = self.response(i, c)
        n = len(i)
        u_open, u_click, u_consume, u_attend = rng.random((4, n))
        opened = u_open < res.p_open
        clicked = opened & (u_click < res.q_click)
        unsub = opened & ~clicked & (u_click < res.q_click + (1.0 - res.q_click) * res.u_unsub)
        consumed = clicked & (u_consume < res.r_consume)
        attended = consumed & (u_attend < res.p_attend)
        kind = cat.kind[c]
        reward = (
            w.open * opened
            + w.click * clicked
            + self._first_reward[kind] * consumed
            + w.attend * attended
            + w.unsubscribe * unsub
        )
        self._emit_send_events(i, c, res.channel, opened, clicked, consumed, attended, unsub, events)
        # hidden state
        sales = cat.sales[c]
        recent_sales = (self.day - pop.last_sales_day[i]) < SALES_STREAK_GAP
        pop.sales_streak[i] = np.where(sales, np.where(recent_sales, pop.sales_streak[i], 0) + 1, 0)
        pop.last_sales_day[i] = np.where(sales, self.day, pop.last_sales_day[i])
        pop.fatigue[i] += 1.0 + 0.5 * sales
        pop.last_touch_day[i] = self.day
        pop.times_sent[i, c] += 1
        pop.consumed[i, c] |= clicked
        pop.engagement[i] += np.stack([opened, clicked, consumed | attended], axis=1)
        unsub_channel = res.channel[unsub]
        pop.consent[i[unsub], unsub_channel] = False
        pop.consent_day[i[unsub], unsub_channel] = self.day
        fit = cat.stage_fit[c, pop.stage[i]]
        topic = np.einsum("nt,nt->n", pop.interest[i], cat.topic[c])
        value = 0.5 * clicked + 1.0 * consumed + 1.5 * attended
        gain = value * (0.3 + fit) * (0.5 + topic)
        pop.readiness[i] += gain * self._buy[pop.persona[i]]
        # What an assistant downloads, her boss reads: part of the gain reaches the account's decider.
        boss = pop.boss[i]
        relay = (boss >= 0) & (pop.authority[i] == 0) & consumed
        np.add.at(pop.readiness, boss[relay], 0.5 * gain[relay] * self._buy[pop.persona[boss[relay]]])
        pop.progress[i] += value * np.where(fit, 1.0, 0.2)
        calmed = clicked & cat.retention[c]
        pop.churn_risk[i[calmed]] *= 0.6
        pop.usage[i[clicked & pop.is_customer[i]]] += 0.05
        self._expansion_purchases(i[clicked & cat.expansion[c] & pop.is_customer[i]], events)
        return Outcome(opened, clicked, consumed, attended, unsub, reward)

    def _emit_send_events(
        self,
        i: np.ndarray,
        c: np.ndarray,
        channel: np.ndarray,
        opened: np.ndarray,
        clicked: np.ndarray,
        consumed: np.ndarray,
        attended: np.ndarray,
        unsub: np.ndarray,
        events: EventBuffer,
    ) -> None:
        cat, rng = self.catalog, self.rng
        t0 = self.start_us + self.day * US_PER_DAY + self.pop.send_minute[i] * 60_000_000
        email = channel == CHANNEL_CODE[Channel.EMAIL]
        delay = (rng.exponential(90, len(i)).clip(1, 600) * 60_000_000).astype(np.int64)
        events.add(i[email], EventType.EMAIL_SENT, t0[email], content=c[email], channel=Channel.EMAIL)
        m = opened & email
        events.add(i[m], EventType.EMAIL_OPEN, t0[m] + delay[m], content=c[m], channel=Channel.EMAIL)
        t_click = t0 + delay + 120_000_000
        m = clicked & email
        events.add(i[m], EventType.EMAIL_CLICK, t_click[m], content=c[m], channel=Channel.EMAIL)
        m = clicked & ~email
        events.add(i[m], EventType.PAGE_VIEW, t_click[m], content=c[m], channel=channel[m])
        kind = cat.kind[c]
        t_next = t_click + 60_000_000
        for k, event_type in (
            (KIND_DOWNLOAD, EventType.CONTENT_DOWNLOAD),
            (KIND_WEBINAR, EventType.WEBINAR_REGISTER),
            (KIND_WORKSHOP, EventType.FORM_SUBMIT),
        ):
            m = consumed & (kind == k)
            events.add(i[m], event_type, t_next[m], content=c[m], channel=channel[m])
        t_attend = t_next + 3 * 3_600_000_000
        for k, event_type in ((KIND_WEBINAR, EventType.WEBINAR_ATTEND), (KIND_WORKSHOP, EventType.WORKSHOP)):
            m = attended & (kind == k)
            events.add(i[m], event_type, t_attend[m], content=c[m], channel=channel[m])
        events.add(
            i[unsub],
            EventType.UNSUBSCRIBE,
            t0[unsub] + delay[unsub] + 30_000_000,
            content=c[unsub],
            channel=channel[unsub],
        )

    def _expansion_purchases(self, contacts: np.ndarray, events: EventBuffer) -> None:
        buys = contacts[self.rng.random(len(contacts)) < 0.3 * self._buy[self.pop.persona[contacts]]]
        props = events.template({"kind": "expansion", "value": VALUE_SLOT})
        t = self._evening(buys)
        events.add(buys, EventType.PURCHASE, t, props=props, value=np.full(len(buys), 250.0))

    # ----------------------------------------------------------------------------------------- day steps
    def _evening(self, contacts: np.ndarray) -> np.ndarray:
        """Timestamps late on the current day, after the day's sends and reactions."""
        base = self.start_us + self.day * US_PER_DAY + 20 * 3_600_000_000
        return base + self.rng.integers(0, 3 * 3_600_000_000, len(contacts))

    def _anytime(self, contacts: np.ndarray) -> np.ndarray:
        return self.start_us + self.day * US_PER_DAY + self.rng.integers(0, US_PER_DAY, len(contacts))

    def morning(self, events: EventBuffer) -> None:
        """Before the day's sends: identification, organic web visits, product usage and support tickets."""
        pop, rng, day = self.pop, self.rng, self.day
        n = pop.n
        everyone = np.arange(n)
        anonymous = pop.identify_day > day
        visit_p = np.minimum(0.5, self._visit[pop.persona] * (1.0 + pop.readiness / 3.0))
        visits = rng.random(n) < visit_p
        page = np.array([events.template({"page": p}) for p in PAGES])
        m = anonymous & visits
        events.add(
            everyone[m],
            EventType.PAGE_VIEW,
            self._anytime(everyone[m]),
            channel=Channel.WEB,
            who=ANONYMOUS,
            props=page[pop.stage[m]],
        )
        new = everyone[pop.identify_day == day]
        new = new[~pop.is_customer[new] | (day > 0)]
        t_new = self._anytime(new)
        for consent in (True, False):
            m = pop.tracking[new] == consent
            events.add(
                new[m],
                EventType.IDENTIFY,
                t_new[m],
                channel=Channel.WEB,
                who=BOTH,
                props=events.template({"tracking_consent": consent}),
            )
        events.add(
            new,
            EventType.FORM_SUBMIT,
            t_new + 1_000_000,
            channel=Channel.WEB,
            props=events.template({"form": "lead_capture"}),
        )
        m = ~anonymous & visits & pop.tracking
        visitors = everyone[m]
        events.add(
            visitors,
            EventType.PAGE_VIEW,
            self._anytime(visitors),
            channel=Channel.WEB,
            who=BOTH,
            props=page[pop.stage[m]],
        )
        pop.readiness[visitors] += 0.1 * self._buy[pop.persona[visitors]] * (pop.stage[visitors] >= 1)
        active = everyone[PAYING[pop.status]]
        users = active[rng.random(len(active)) < 0.25 * pop.usage[active]]
        events.add(
            users,
            EventType.PRODUCT_USAGE,
            self._anytime(users),
            channel=Channel.IN_APP,
            props=events.template({"minutes": VALUE_SLOT}),
            value=rng.integers(5, 120, len(users)),
        )
        tickets = active[rng.random(len(active)) < 0.01 + 0.03 * (1.0 - pop.usage[active])]
        bad = rng.random(len(tickets)) < 0.4
        for severity, m in (("high", bad), ("low", ~bad)):
            events.add(
                tickets[m],
                EventType.SUPPORT_TICKET,
                self._anytime(tickets[m]),
                props=events.template({"severity": severity}),
            )
        pop.churn_risk[tickets[bad]] += 0.2
        pop.usage[tickets[bad]] = np.maximum(pop.usage[tickets[bad]] - 0.05, 0.0)

    def evening(self, events: EventBuffer) -> None:
        """After the day's sends: stage moves, funnel moves, deals, renewals and churn, then decay."""
        self._stage_moves(events)
        self._funnel(events)
        self._customers(events)
        pop = self.pop
        pop.fatigue *= np.exp(-1.0 / FATIGUE_DAYS)
        pop.readiness *= np.exp(-1.0 / READINESS_DAYS)
        pop.engagement *= np.exp(-1.0 / ENGAGEMENT_DAYS)
        self.day += 1

    def _set_stage(self, contacts: np.ndarray, stage: int | np.ndarray, events: EventBuffer) -> None:
        pop = self.pop
        new = np.broadcast_to(np.asarray(stage), contacts.shape)
        moved = pop.stage[contacts] != new
        contacts, new = contacts[moved], new[moved]
        old = pop.stage[contacts]
        t = self._evening(contacts)
        for a in np.unique(old):
            for b in np.unique(new[old == a]):
                m = (old == a) & (new == b)
                props = events.template({"from": STAGE_IDS[int(a)], "to": STAGE_IDS[int(b)]})
                events.add(contacts[m], EventType.STAGE_CHANGE, t[m], props=props)
        pop.stage[contacts] = new
        pop.stage_day[contacts] = self.day
        pop.progress[contacts] = 0.0

    def _set_status(self, contacts: np.ndarray, status: LeadStatus, events: EventBuffer) -> None:
        pop = self.pop
        old = pop.status[contacts]
        t = self._evening(contacts) + 1_000_000
        for a in np.unique(old):
            m = old == a
            props = events.template({"from": STATUSES[a].value, "to": status.value})
            events.add(contacts[m], EventType.STATUS_CHANGE, t[m], props=props)
        pop.status[contacts] = STATUS[status]

    def _stage_moves(self, events: EventBuffer) -> None:
        pop = self.pop
        ready = (pop.progress >= STAGE_PROGRESS) & (pop.stage < STAGE["consultation"]) & LEAD_LIKE[pop.status]
        c = np.flatnonzero(ready)
        self._set_stage(c, pop.stage[c] + 1, events)
        onboarded = (pop.stage == STAGE["onboarding"]) & (
            (pop.progress >= 1.5) | (self.day - pop.stage_day >= 30)
        )
        c = np.flatnonzero(onboarded)
        self._set_stage(c, STAGE["retention"], events)
        self._set_status(c[pop.status[c] == STATUS[LeadStatus.WON]], LeadStatus.ACTIVE, events)
        grow = (pop.stage == STAGE["retention"]) & (pop.usage > 0.6) & (pop.progress >= STAGE_PROGRESS)
        self._set_stage(np.flatnonzero(grow), STAGE["expansion"], events)
        settle = (pop.stage == STAGE["expansion"]) & (self.day - pop.stage_day >= 60)
        self._set_stage(np.flatnonzero(settle), STAGE["retention"], events)
        gone = (pop.stage == STAGE["churn"]) & (self.day - pop.stage_day >= 30)
        self._set_stage(np.flatnonzero(gone), STAGE["reactivation"], events)

    def _funnel(self, events: EventBuffer) -> None:
        pop, rng, day = self.pop, self.rng, self.day
        buy = self._buy[pop.persona]
        identified = pop.identify_day <= day
        mql = np.flatnonzero(
            identified & (pop.status == STATUS[LeadStatus.LEAD]) & (pop.readiness >= MQL_READINESS)
        )
        self._set_status(mql, LeadStatus.MQL, events)
        p_request = 0.08 * _sigmoid(1.2 * (pop.readiness - 6.0)) * (0.2 + 0.8 * pop.authority) * (buy > 0)
        asking = (
            identified
            & LEAD_LIKE[pop.status]
            & (pop.stage >= STAGE["information"])
            & (pop.stage <= STAGE["closing"])
            & (rng.random(pop.n) < p_request)
        )
        c = np.flatnonzero(asking)
        demo = pop.stage[c] >= STAGE["consultation"]
        t = self._evening(c) - 3_600_000_000
        events.add(c[demo], EventType.DEMO_REQUEST, t[demo], channel=Channel.WEB)
        events.add(c[~demo], EventType.CONTACT_REQUEST, t[~demo], channel=Channel.WEB)
        self._set_status(c, LeadStatus.SAL, events)
        self._set_stage(c, STAGE["closing"], events)
        pop.sql_day[c] = day + rng.integers(2, 8, len(c))
        pop.close_day[c] = pop.sql_day[c] + rng.integers(7, 31, len(c))
        c = np.flatnonzero((pop.sql_day == day) & (pop.status == STATUS[LeadStatus.SAL]))
        self._set_status(c, LeadStatus.SQL, events)
        events.add(
            c, EventType.OPPORTUNITY_OPEN, self._evening(c), props=events.template({"stage": "qualified"})
        )
        c = np.flatnonzero((pop.close_day == day) & (pop.status == STATUS[LeadStatus.SQL]))
        p_win = (
            self._win[pop.persona[c]]
            * np.where(pop.authority[c], 1.0, 0.15)
            * np.where(pop.budget[c], 1.2, 0.8)
        )
        won = rng.random(len(c)) < np.minimum(p_win, 0.95)
        self._win_deal(c[won], events)
        lost = c[~won]
        self._set_status(lost, LeadStatus.LOST, events)
        self._set_stage(lost, STAGE["information"], events)
        pop.readiness[lost] *= 0.3
        back = np.flatnonzero(
            (pop.stage == STAGE["reactivation"])
            & (pop.status == STATUS[LeadStatus.CHURNED])
            & (rng.random(pop.n) < 0.05 * _sigmoid(pop.readiness - 4.0) * buy)
        )
        self._win_deal(back, events)

    def _win_deal(self, contacts: np.ndarray, events: EventBuffer) -> None:
        pop = self.pop
        value = np.where(pop.b2b[contacts], 5000.0, 300.0)
        events.add(
            contacts,
            EventType.PURCHASE,
            self._evening(contacts) + 2_000_000,
            props=events.template({"kind": "new", "value": VALUE_SLOT}),
            value=value,
        )
        self._set_status(contacts, LeadStatus.WON, events)
        self._set_stage(contacts, STAGE["onboarding"], events)
        pop.customer_since[contacts] = self.day
        pop.next_renewal[contacts] = self.day + self._renewal[pop.persona[contacts]]
        pop.usage[contacts] = self.rng.beta(5, 3, len(contacts))
        pop.churn_risk[contacts] = 0.1
        pop.readiness[contacts] = 0.0
        pop.sql_day[contacts] = pop.close_day[contacts] = NEVER
        in_app = CHANNEL_CODE[Channel.IN_APP]
        pop.consent[contacts, in_app] = True
        pop.consent_day[contacts, in_app] = self.day

    def _customers(self, events: EventBuffer) -> None:
        pop, rng, day = self.pop, self.rng, self.day
        active = np.flatnonzero(PAYING[pop.status])
        pop.usage[active] = np.clip(
            pop.usage[active] + 0.01 * (0.6 - pop.usage[active]) + rng.normal(0, 0.02, len(active)), 0.0, 1.0
        )
        pop.churn_risk[active] = np.clip(
            pop.churn_risk[active]
            + 0.01 * (0.1 - pop.churn_risk[active])
            + 0.006 * (0.5 - pop.usage[active]),
            0.0,
            1.0,
        )
        risky = active[(pop.status[active] == STATUS[LeadStatus.ACTIVE]) & (pop.churn_risk[active] > 0.4)]
        self._set_status(risky, LeadStatus.AT_RISK, events)
        calm = active[(pop.status[active] == STATUS[LeadStatus.AT_RISK]) & (pop.churn_risk[active] < 0.25)]
        self._set_status(calm, LeadStatus.ACTIVE, events)
        due = active[pop.next_renewal[active] == day]
        cancel = rng.random(len(due)) < np.clip(0.8 * pop.churn_risk[due], 0.0, 0.95)
        leaving = due[cancel]
        events.add(leaving, EventType.CANCELLATION, self._evening(leaving))
        self._set_status(leaving, LeadStatus.CHURNED, events)
        self._set_stage(leaving, STAGE["churn"], events)
        pop.next_renewal[leaving] = NEVER
        in_app = CHANNEL_CODE[Channel.IN_APP]
        pop.consent[leaving, in_app] = False
        pop.consent_day[leaving, in_app] = day
        staying = due[~cancel]
        value = np.where(pop.b2b[staying], 5000.0, 300.0)
        events.add(
            staying,
            EventType.RENEWAL,
            self._evening(staying),
            props=events.template({"value": VALUE_SLOT}),
            value=value,
        )
        pop.next_renewal[staying] += self._renewal[pop.persona[staying]]
