# The AIO income test as the law stands (Participatiewet, texts of 2026-01-01 and 2026-07-01).
# A rule analyst adds a case by adding a row to a table: no Python needed. Amounts in euro
# cents; "pension" and "wage" are the household's net polis income over the whole period.
Feature: AIO income test 2026

  Scenario Outline: <case>
    Given the shipped AIO rule
    And a <category> household with <sharers> cost-sharers and known income <known>
    And polis income over the period of <pension> pension
    When it is screened for the period <period>
    Then its monthly norm is <norm>
    And the household is <outcome>

    Examples: norms of art. 22, one cent either side of the threshold
      | case                         | period           | category | sharers | known  | pension | norm   | outcome      |
      | single Jan 2026, below       | 2026-01..2026-06 | single   | 0       | 150000 | 38813   | 156469 | eligible     |
      | single Jan 2026, at          | 2026-01..2026-06 | single   | 0       | 150000 | 38814   | 156469 | not eligible |
      | couple Jan 2026, below       | 2026-01..2026-06 | couple   | 0       | 200000 | 86495   | 214416 | eligible     |
      | couple Jan 2026, at          | 2026-01..2026-06 | couple   | 0       | 200000 | 86496   | 214416 | not eligible |
      | single Jul 2026, below       | 2026-07..2026-12 | single   | 0       | 150000 | 52403   | 158734 | eligible     |
      | single Jul 2026, at          | 2026-07..2026-12 | single   | 0       | 150000 | 52404   | 158734 | not eligible |
      | couple Jul 2026, below       | 2026-07..2026-12 | couple   | 0       | 210000 | 45659   | 217610 | eligible     |
      | couple Jul 2026, at          | 2026-07..2026-12 | couple   | 0       | 210000 | 45660   | 217610 | not eligible |

    Examples: cost-sharers of art. 22a, A = cost-sharers + applicant (+ partner)
      | case                         | period           | category | sharers | known  | pension | norm   | outcome      |
      | single A=2 Jan 2026          | 2026-01..2026-06 | single   | 1       | 100000 | 43247   | 107208 | eligible     |
      | single A=3 Jan 2026          | 2026-01..2026-06 | single   | 2       | 90000  | 17483   | 92914  | eligible     |
      | single A=4 Jan 2026, at      | 2026-01..2026-06 | single   | 3       | 80000  | 34596   | 85766  | not eligible |
      | couple A=3 Jan 2026          | 2026-01..2026-06 | couple   | 1       | 180000 | 34967   | 185828 | eligible     |
      | couple A=3 Jan 2026, at      | 2026-01..2026-06 | couple   | 1       | 180000 | 34968   | 185828 | not eligible |
      | single A=2 Jul 2026          | 2026-07..2026-12 | single   | 1       | 100000 | 52829   | 108805 | eligible     |

  Scenario: a period in 2027 is refused, naming the newest norm
    Given the shipped AIO rule
    And a single household with 0 cost-sharers and known income 150000
    And polis income over the period of 0 pension
    When it is screened for the period 2027-01..2027-06
    Then the screening is refused naming "from 2026-07-01"

  Scenario Outline: work income of art. 31 lid 2 onder n: <case>
    Given the shipped AIO rule
    And a single household with 0 cost-sharers and known income <known>
    And a net wage of <wage> in each month of the period
    When it is screened for the period <period>
    Then the exemption over the period is <exemption>
    And the household is <outcome>

    Examples: 25 percent per person and month, up to the month's cap (EUR 285,00 in 2026)
      | case                           | period           | known  | wage   | exemption | outcome      |
      | below the cap, below threshold | 2026-01..2026-01 | 100000 | 75290  | 18822     | eligible     |
      | below the cap, at threshold    | 2026-01..2026-01 | 100000 | 75292  | 18823     | not eligible |
      | at the cap, below threshold    | 2026-01..2026-01 | 0      | 184968 | 28500     | eligible     |
      | at the cap, at threshold       | 2026-01..2026-01 | 0      | 184969 | 28500     | not eligible |
      | July 2026, capped every month  | 2026-07..2026-12 | 0      | 187233 | 171000    | eligible     |
      | July 2026, at threshold        | 2026-07..2026-12 | 0      | 187234 | 171000    | not eligible |
