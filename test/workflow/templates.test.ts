/**
 * Templates as seed 003 writes them (Twig there, liquidjs here): `{{ order.code }}`, loops over
 * the order's fields, `clientData['field…']`, rendered from the request context by the same
 * code that renders step params and setData values. And what a template must never reach:
 * prototypes, and secrets in anything stored.
 */
import { expect } from 'chai';
import serviceOrder from '../../pipelines/service-order.pipeline';
import type { ModuleStepDef } from '../../src/pipeline/types';
import { maskedSecrets, renderValue, type SecretSource } from '../../src/templates/render';

const noSecrets: SecretSource = () => undefined;

const ORDER = {
  code: 'A-1001',
  service: { title: 'Вывоз мусора', organization: { currency: { sum: 1500, short_title: '₽' } } },
  delivery: 'Самовывоз', payed: false, sum: 1500, sum_payed: 0, sum_total: 1500,
  customer: { title: 'ООО «Ромашка»' },
  customerUser: { title: 'Анна', phone_number: '+7 900 000-00-01' },
  executor: { title: 'Чистый город', communityProvider: { id: 42 } },
  executorUser: null,
  status: { title: 'Новый' },
  deadline: '2026-12-01',
  fieldsData: [
    { field: { title: 'Адрес' }, valueFormatted: 'Москва, Тверская 1' },
    { field: { title: 'Объём' }, valueFormatted: '2 м³' },
  ],
};
const context = (): Record<string, unknown> => ({
  payload: structuredClone(ORDER),
  request: { id: 'r-1', mode: null, test: false },
  order: structuredClone(ORDER),
  // What the step `order` assigns: the order's status and payment live in vars.
  vars: { status: { id: 'NEW', title: 'Новый' }, payed: false },
  state2: { action: 'action1_chat', by: 'env#4', data: { field1416182395: 'Позвоните за час' } },
});

describe('templates: seed 003 renders, nothing reaches a prototype', () => {
  it('renders {{ order.code }} inside text, and alone keeps the value as it is', () => {
    expect(renderValue('Заказ #{{ order.code }}', context(), noSecrets)).to.equal('Заказ #A-1001');
    expect(renderValue('{{ order.sum }}', context(), noSecrets)).to.equal(1500);
    expect(renderValue('{{ order.fieldsData }}', context(), noSecrets)).to.deep.equal(ORDER.fieldsData);
    expect(renderValue('{{ order.missing.deeper }}', context(), noSecrets)).to.equal('');
  });

  it('renders a {% for item in order.fieldsData %} loop', () => {
    const text = '{% for item in order.fieldsData %}<strong>{{ item.field.title }}</strong>: {{ item.valueFormatted }}<br/>{% endfor %}';
    expect(renderValue(text, context(), noSecrets)).to.equal('<strong>Адрес</strong>: Москва, Тверская 1<br/><strong>Объём</strong>: 2 м³<br/>');
  });

  it("renders the seed's whole state0 e-mail, as the service-order pipeline carries it", () => {
    const step = serviceOrder.steps['state0-email'] as ModuleStepDef;
    expect(renderValue(step.params!.text, context(), noSecrets)).to.equal(
      'Заказ #A-1001<br/><br/><strong>Услуга</strong>: Вывоз мусора<br/><strong>Доставка</strong>: Самовывоз<br/>' +
      '<strong>Оплачен</strong>: нет<br/><strong>Сумма к оплате</strong>: 1500<br/><strong>Выплаченная сумма</strong>: 0<br/>' +
      '<strong>Общая сумма</strong>: 1500<br/><strong>Организация заказчика</strong>: ООО «Ромашка»<br/>' +
      '<strong>Заказчик</strong>: Анна +7 900 000-00-01<br/><strong>Провайдер</strong>: Чистый город<br/>' +
      '<strong>Исполнитель</strong>: <br/><strong>Статус</strong>: Новый<br/><strong>Дата запланированного завершения</strong>: 2026-12-01<br/><br/>' +
      '<strong>Адрес</strong>: Москва, Тверская 1<br/><strong>Объём</strong>: 2 м³<br/><br/>' +
      'Детали заказа доступны в <a href="https://lk.crabler.com/site/42/jump">личном кабинете</a>.',
    );
  });

  it("renders clientData['field…'] as the action's data, and the setData step that copies the order", () => {
    expect(renderValue("{{ state2.data['field1416182395'] }}", context(), noSecrets)).to.equal('Позвоните за час');
    const order = serviceOrder.steps.order as { data: Record<string, unknown> };
    const copied = renderValue(order.data, { payload: structuredClone(ORDER) }, noSecrets) as Record<string, unknown>;
    expect(copied.code).to.equal('A-1001');
    expect(copied.fieldsData).to.deep.equal(ORDER.fieldsData);
  });

  it('reaches no prototype: {{ payload.constructor }} and friends render empty', () => {
    const probes = [
      '{{ payload.constructor }}',
      'x{{ payload.constructor }}x',
      '{{ payload.constructor.name }}',
      'x{{ payload.constructor.name }}x',
      '{{ payload.__proto__ }}',
      "x{{ payload['constructor'] }}x",
      'x{{ order.fieldsData.constructor }}x',
      'x{{ order.code.constructor.name }}x',
      'x{{ payload.hasOwnProperty }}x',
      'x{{ payload.toString }}x',
      '{% assign c = payload.constructor %}x{{ c.prototype }}{{ c.name }}x',
      'x{% for k in payload.constructor %}{{ k }}{% endfor %}x',
      "x{{ payload | map: 'constructor' | join: ',' }}x",
    ];
    for (const probe of probes) {
      const out = renderValue(probe, context(), noSecrets);
      expect(out === '' || out === 'xx', `${probe} → ${JSON.stringify(out)}`).to.equal(true);
    }
  });

  it('leaves Object.prototype clean whatever a template assigns', () => {
    const before = Object.getOwnPropertyNames(Object.prototype).sort();
    const attempts = [
      '{% assign __proto__ = payload %}{{ __proto__ }}',
      "{% assign constructor = 'x' %}{{ constructor }}",
      '{% capture __proto__ %}polluted{% endcapture %}{{ polluted }}',
      "{% assign prototype = payload | map: '__proto__' %}{{ prototype }}",
    ];
    for (const a of attempts) {
      try {
        renderValue(a, context(), noSecrets);
      } catch {
        // refusing to render is fine too; polluting is not
      }
    }
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).to.deep.equal(before);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    expect(Object.prototype.toString.call({})).to.equal('[object Object]');
  });

  it('resolves {{ secrets.NAME }} only where it is sent, and masks it everywhere it is stored', () => {
    const secrets: SecretSource = (name) => (name === 'NOTIFY_API_KEY' ? 'real-secret-value' : undefined);
    const params = { apiKey: '{{ secrets.NOTIFY_API_KEY }}', header: 'Bearer {{ secrets.NOTIFY_API_KEY }}' };
    expect(renderValue(params, context(), secrets)).to.deep.equal({ apiKey: 'real-secret-value', header: 'Bearer real-secret-value' });
    expect(renderValue(params, context(), maskedSecrets)).to.deep.equal({ apiKey: '[REDACTED]', header: 'Bearer [REDACTED]' });
    expect(renderValue('{{ secrets.OTHER }}', context(), secrets)).to.equal('');
  });
});
