import t from 'tap'
import { validationErrors } from '../../src/validation.js'

t.test('Ajv errors become DRF field errors', async (t) => {
  t.same(validationErrors([
    { keyword: 'required', instancePath: '', schemaPath: '#/required', params: { missingProperty: 'email' }, message: "must have required property 'email'" },
    { keyword: 'type', instancePath: '/username', schemaPath: '#/properties/username/type', params: { type: 'string' }, message: 'must be string' },
    { keyword: 'minLength', instancePath: '/password', schemaPath: '', params: { limit: 8 }, message: 'must NOT have fewer than 8 characters' },
    { keyword: 'maxLength', instancePath: '/password', schemaPath: '', params: { limit: 256 }, message: 'must NOT have more than 256 characters' },
    { keyword: 'pattern', instancePath: '/code', schemaPath: '', params: { pattern: '^[0-9]+$' }, message: 'must match pattern "^[0-9]+$"' },
    { keyword: 'type', instancePath: '', schemaPath: '#/type', params: { type: 'object' }, message: 'must be object' },
    { keyword: 'type', instancePath: '/username', schemaPath: '#/properties/username/type', params: { type: 'string' }, message: 'must be string' }
  ]), {
    email: ['This field is required.'],
    username: ['Must be of type string.'],
    password: ['Ensure this field has at least 8 characters.', 'Ensure this field has no more than 256 characters.'],
    code: ['Must match pattern "^[0-9]+$".'],
    non_field_errors: ['Must be of type object.']
  })
})

t.test('a key refused by its name is reported under that name, even one every object has', async (t) => {
  const errors = validationErrors([
    { keyword: 'not', instancePath: '', schemaPath: '#/propertyNames/not', params: {}, message: 'must NOT be valid', propertyName: 'constructor' },
    { keyword: 'propertyNames', instancePath: '', schemaPath: '#/propertyNames', params: { propertyName: 'constructor' }, message: 'property name must be valid' }
  ] as never)
  t.same(Object.entries(errors), [['constructor', ['This key is not allowed.']]])
})
