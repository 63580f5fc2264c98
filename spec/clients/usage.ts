// Compiled by `make lint` against the types openapi-typescript generates from spec/openapi.yaml:
// if an operation, a schema or a field used here changes shape, the build fails.
import type { components, operations, paths } from "../../build/sdk/typescript/schema";

type PetInput = components["schemas"]["PetInput"];
type Pet = components["schemas"]["Pet"];
type ListPets = paths["/pets"]["get"];

export const buddy: PetInput = {
  name: "Buddy",
  species: "DOG",
  ageMonths: 24,
  price: "150.00",
  currency: "USD",
  status: "AVAILABLE",
};

export const query: NonNullable<ListPets["parameters"]["query"]> = {
  species: ["DOG", "CAT"],
  status: ["AVAILABLE"],
  sort: "-createdAt",
  limit: 20,
};

export function names(page: ListPets["responses"]["200"]["content"]["application/json"]): string[] {
  return page.data.map((pet: Pet) => pet.name);
}

export const order: operations["createOrder"]["requestBody"] = {
  content: { "application/json": { petId: "019b4132-70aa-764f-b315-e2803d882a24" } },
};
